package main

import (
	"context"
	"fmt"
	"io"
)

// cmdRun is `mdbridge run`: configuration from MDB_* variables (see -h).
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "(configured by MDB_* environment variables; see mdbridge -h)", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge: %v\nRun `mdbridge -h` for every variable and its allowed values.\n", err)
		return exitUsage
	}
	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	setMemoryLimit(logger)
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return exitFailure
	}
	return a.run(ctx)
}
