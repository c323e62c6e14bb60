//go:build !linux

package bench

import (
	"errors"
	"os/exec"
)

const pinSupported = false

func startPinned(*exec.Cmd, int) error { return errors.New("-pin needs Linux") }

func pinSelf([]int) error { return errors.New("-pin needs Linux") }
