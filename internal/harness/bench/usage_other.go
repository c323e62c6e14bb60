//go:build !unix

package bench

import "time"

// cpuTime is unknown on this system: 0.
func cpuTime() time.Duration { return 0 }

// memStatus is unknown on this system: 0, 0.
func memStatus() (rss, peak uint64) { return 0, 0 }

// resetPeakRSS is not possible here.
func resetPeakRSS() bool { return false }
