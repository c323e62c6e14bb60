package exsim

import "errors"

// Sentinel errors of package exsim. Match them with errors.Is; the
// returned errors wrap them with details.
var (
	// ErrConfig: a Config value is invalid (New).
	ErrConfig = errors.New("exsim: invalid config")
	// ErrUnknownMarket: no market is configured for the venue and symbol.
	ErrUnknownMarket = errors.New("exsim: unknown market")
	// ErrUnknownConn: no connection has the given id.
	ErrUnknownConn = errors.New("exsim: unknown connection")
	// ErrBadFault: a Fault is invalid (unknown kind, bad target or values).
	ErrBadFault = errors.New("exsim: invalid fault")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("exsim: already started")
	// ErrClosed: the server has been closed.
	ErrClosed = errors.New("exsim: closed")
)
