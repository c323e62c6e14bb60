package publisher

import "errors"

// Sentinel errors of package publisher. Match them with errors.Is.
var (
	// ErrConfig: a Config, ConnConfig or EmbeddedConfig field is invalid. The
	// wrapping error names the field.
	ErrConfig = errors.New("publisher: invalid configuration")
	// ErrClosed: the publisher, state writer or service was shut down.
	ErrClosed = errors.New("publisher: closed")
	// ErrDropped: an event waited for with PublishWait was discarded
	// unacknowledged because the buffer was full (DropOldest).
	ErrDropped = errors.New("publisher: event dropped from a full buffer")
	// ErrRejected: an event can never be stored (no valid subject or msg
	// ID, too large, or refused by the server repeatedly). The wrapping
	// error says why.
	ErrRejected = errors.New("publisher: event rejected")
	// ErrUnflushed: Shutdown's context ended before every buffered message
	// was acknowledged. The wrapping error carries the count.
	ErrUnflushed = errors.New("publisher: messages not acknowledged at shutdown")
	// ErrAuth: the NATS server rejected the credentials.
	ErrAuth = errors.New("publisher: NATS authentication failed")
	// ErrTLS: the TLS configuration could not be loaded or the handshake
	// failed.
	ErrTLS = errors.New("publisher: NATS TLS failed")
	// ErrConnect: NATS could not be reached before the context ended.
	ErrConnect = errors.New("publisher: cannot connect to NATS")
	// ErrStreamConflict: the stream cannot be created or updated because of
	// an existing stream or an incompatible existing configuration.
	ErrStreamConflict = errors.New("publisher: stream conflict")
	// ErrNoStream: JetStream or the stream is not available.
	ErrNoStream = errors.New("publisher: JetStream stream unavailable")
	// ErrSnapshot: a snapshot request failed; the wrapping error carries the
	// serving replica's message.
	ErrSnapshot = errors.New("publisher: snapshot request failed")
	// ErrBusy: the snapshot service refused a request because
	// SnapshotMaxWaiters requests were waiting. SnapshotRequester returns
	// it as a *BusyError, whose RetryAfter (the reply's retry_after_ms)
	// says when to ask again.
	ErrBusy = errors.New("publisher: snapshot service busy")
	// ErrUnknownSymbol: a snapshot was requested for an exchange or symbol
	// this bridge does not serve. SnapshotSource implementations return it
	// (wrapped) for symbols they do not know.
	ErrUnknownSymbol = errors.New("publisher: unknown exchange or symbol")
	// ErrNoResponders: no bridge replica serves the control subject.
	ErrNoResponders = errors.New("publisher: no bridge serves the snapshot control subject")
	// ErrEmbedded: the embedded NATS server failed to start.
	ErrEmbedded = errors.New("publisher: embedded NATS server")
)
