package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryMax is the cgroup v2 memory limit of this container.
var cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// memLimitShare is the part of the container's memory limit given to the
// Go heap as a soft limit; the rest covers stacks, the runtime and
// fragmentation.
const memLimitShare = 0.9

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of the
// container's cgroup limit unless GOMEMLIMIT is set: with GOGC alone the
// heap may grow to twice the live data before a collection, so a publish
// buffer filling during a NATS outage (MDB_BUFFER_BYTES, 256 MiB by
// default) could have the pod OOM-killed under a 512 MiB limit; with the
// soft limit the collector works harder instead. It returns the limit set
// (0: none).
func setMemoryLimit(log *slog.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	b, err := os.ReadFile(cgroupMemoryMax)
	if err != nil {
		return 0 // not in a cgroup v2 container
	}
	s := strings.TrimSpace(string(b))
	max, err := strconv.ParseInt(s, 10, 64)
	if err != nil || max <= 0 { // "max": no limit
		return 0
	}
	limit := int64(float64(max) * memLimitShare)
	debug.SetMemoryLimit(limit)
	log.Info("Go memory limit set from the container's", "cgroup_limit_bytes", max, "gomemlimit_bytes", limit, "override", "GOMEMLIMIT")
	return limit
}
