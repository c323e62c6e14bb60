//go:build linux

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinSupported reports whether -pin can work here.
const pinSupported = true

// startPinned starts cmd with its CPU affinity limited to cpu: the child
// is forked from a thread whose mask is set for the moment, and inherits
// it (so every thread of the child stays on that CPU).
func startPinned(cmd *exec.Cmd, cpu int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("reading the CPU affinity: %w", err)
	}
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return fmt.Errorf("pinning to CPU %d: %w", cpu, err)
	}
	err := cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil && err == nil {
		err = fmt.Errorf("restoring the CPU affinity: %w", rerr)
	}
	return err
}

// pinSelf limits every thread of this process to cpus (threads started
// later inherit the mask of the thread that creates them) and sets
// GOMAXPROCS to their number.
func pinSelf(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tids, err := filepath.Glob("/proc/self/task/*")
	if err != nil || len(tids) == 0 {
		return fmt.Errorf("listing this process's threads: %v", err)
	}
	for _, p := range tids {
		tid, err := strconv.Atoi(filepath.Base(p))
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !os.IsNotExist(err) && err != unix.ESRCH {
			return fmt.Errorf("pinning thread %d: %w", tid, err)
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}
