package chaos

import (
	"log/slog"
	"os"
	"testing"
)

// testLogger discards component logs unless MDB_TEST_LOG is set (then they
// go to stderr at debug level): background goroutines of a killed replica
// may log after the test ended, which testing.T forbids.
func testLogger(testing.TB) *slog.Logger {
	if os.Getenv("MDB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
