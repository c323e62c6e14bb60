package chaos

import "errors"

// Sentinel errors of package chaos. Match them with errors.Is.
var (
	// ErrConfig: a Config value is invalid; the wrapping error names the field.
	ErrConfig = errors.New("chaos: invalid configuration")
	// ErrHarness: the harness itself could not run (a component failed to
	// start or the stream could not be read); the soak proves nothing.
	ErrHarness = errors.New("chaos: harness failure")
	// ErrSoakFailed: the soak ran and the reconciliation found a violated
	// guarantee (lost or duplicated events, a diverged book, unbounded
	// resource growth). The wrapping error lists them.
	ErrSoakFailed = errors.New("chaos: soak failed")
)
