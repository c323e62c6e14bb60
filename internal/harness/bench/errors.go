package bench

import "errors"

// Sentinel errors of package bench. Match them with errors.Is.
var (
	// ErrConfig: a Config or ScaleConfig field is invalid; the wrapping
	// error names the field.
	ErrConfig = errors.New("bench: invalid configuration")
	// ErrIncomplete: a phase ended before every message was acknowledged
	// (the context ended or acknowledgements stopped arriving). The wrapping
	// error carries the counts.
	ErrIncomplete = errors.New("bench: phase incomplete")
	// ErrSetup: the simulator, NATS or the bridge could not be started.
	ErrSetup = errors.New("bench: setup failed")
)
