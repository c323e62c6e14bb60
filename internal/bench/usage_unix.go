//go:build unix && !linux

package bench

import (
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

// memStatus returns the current RSS (unknown here: 0) and the peak RSS
// from getrusage (ru_maxrss: kilobytes on most systems, bytes on macOS).
func memStatus() (rss, peak uint64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return 0, uint64(ru.Maxrss) << 10
}

// resetPeakRSS is not possible here.
func resetPeakRSS() bool { return false }
