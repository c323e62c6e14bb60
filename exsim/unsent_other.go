//go:build !linux

package exsim

import "net"

// unsentBytes is unknown outside Linux: only the frames not yet handed to
// the kernel are recorded in flight at a close.
func unsentBytes(net.Conn) (n int, ok bool) { return 0, false }
