// Package cli holds what every mdbridge command shares: exit codes, flag
// sets whose errors and -h go to the command's stderr, and the logger
// built from a level and a format. The commands themselves live in their
// packages (cmd/mdbridge for run, status, tail, snapshot, demo;
// internal/harness/bench, internal/harness/chaos and exsim expose Main).
//
// It has no state; everything is safe for concurrent use.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// Exit codes of every mdbridge command.
const (
	ExitOK      = 0
	ExitFailure = 1 // a runtime failure
	ExitUsage   = 2 // a bad command line or configuration
)

// NewFlags returns a FlagSet for `mdbridge <name>` whose errors and -h go to
// stderr, after the line "Usage: mdbridge <name> <usage>".
func NewFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mdbridge %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args. It returns -1 to go on, or the exit code to end with:
// ExitOK after -h, ExitUsage after a bad flag (already reported).
func Parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	return -1
}

// Given returns the names of the flags set on the command line.
func Given(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// ParseLevel parses a log level: debug, info, warn or error. Its error
// names the allowed values.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q; allowed: debug, info, warn, error", s)
	}
	return l, nil
}

// NewLogger returns a logger writing to w at level (info when it is not
// one of ParseLevel's), as JSON when format is "json", else as text.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	lvl, err := ParseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// IsTerminal reports whether w is a terminal (progress lines redraw in
// place there, and are plain lines elsewhere).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
