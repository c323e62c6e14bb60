//go:build unix

package bench

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// cpuTime returns the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memStatus returns the process's current and peak resident set size in
// bytes: VmRSS and VmHWM of /proc/self/status (Linux), else 0 and the
// peak from getrusage (ru_maxrss: kilobytes, but bytes on macOS/iOS).
func memStatus() (rss, peak uint64) {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		return statusKB(b, "VmRSS:"), statusKB(b, "VmHWM:")
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return 0, uint64(ru.Maxrss)
	}
	return 0, uint64(ru.Maxrss) << 10
}

// statusKB parses a "Key:   1234 kB" line of /proc/<pid>/status into bytes.
func statusKB(b []byte, key string) uint64 {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0
	}
	line := b[i+len(key):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := bytes.Fields(line)
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0+), so the next
// memStatus peak covers only what follows. It reports whether it worked
// (never elsewhere: there is no /proc/self/clear_refs).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
