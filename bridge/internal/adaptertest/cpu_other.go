//go:build !unix

package adaptertest

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
