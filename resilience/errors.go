package resilience

import (
	"errors"
	"fmt"
)

// Sentinel errors of package resilience. Match them with errors.Is; the
// returned errors wrap them with details.
var (
	// ErrInvalidConfig: a configuration value is out of range. The wrapping
	// error names the offending field, e.g.
	// "resilience: invalid configuration: ReconnectConfig.MaxDelay: must not be negative (got -1s)".
	ErrInvalidConfig = errors.New("resilience: invalid configuration")

	// ErrInvalidTransition: ConnectionStateManager.Transition was asked for a
	// transition outside the state diagram. The wrapping error names both
	// states.
	ErrInvalidTransition = errors.New("resilience: invalid state transition")

	// ErrTimeSync: TimeSyncManager.Sync obtained no usable sample. The
	// wrapping error carries the last failure from the TimeSource. The
	// previous offset is kept.
	ErrTimeSync = errors.New("resilience: time sync failed")
)

// configError builds an ErrInvalidConfig error naming field.
func configError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}
