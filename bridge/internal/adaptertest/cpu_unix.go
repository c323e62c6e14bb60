//go:build unix

package adaptertest

import (
	"syscall"
	"time"
)

// processCPU returns the process's CPU time (user + system).
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
