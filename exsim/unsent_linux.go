package exsim

import (
	"net"
	"syscall"
	"unsafe"
)

// unsentBytes returns the bytes of c's kernel send queue the peer has not
// acknowledged (SIOCOUTQ, which Linux numbers as TIOCOUTQ); ok is false
// when unknown. Bytes sent but not acknowledged count: the peer may have
// dropped them (a full receive window), and a reset then discards them.
func unsentBytes(c net.Conn) (n int, ok bool) {
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var v int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&v)))
	}); err != nil || errno != 0 {
		return 0, false
	}
	return int(v), true
}
