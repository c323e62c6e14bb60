package bridge

import "errors"

// Sentinel errors of package bridge. Match them with errors.Is.
var (
	// ErrBadEvent: a wire body does not follow the event schema.
	ErrBadEvent = errors.New("bridge: malformed event")
	// ErrBadIdent: an exchange or symbol name is not [A-Za-z0-9_-]{1,64}.
	ErrBadIdent = errors.New("bridge: invalid identifier")
)
