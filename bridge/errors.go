package bridge

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of package bridge. Match them with errors.Is.
var (
	// ErrBadEvent: a wire body does not follow the event schema.
	ErrBadEvent = errors.New("bridge: malformed event")
	// ErrBadIdent: an exchange or symbol name is not [A-Za-z0-9_-]{1,64}.
	ErrBadIdent = errors.New("bridge: invalid identifier")
	// ErrMalformed: an inbound exchange frame could not be decoded; it is
	// dropped and counted.
	ErrMalformed = errors.New("bridge: malformed frame")
	// ErrNotSupported: the venue cannot do what was asked (e.g. trade
	// backfill by id on Bybit).
	ErrNotSupported = errors.New("bridge: not supported by this exchange")
	// ErrExchange: the exchange answered a request with an error (a REST
	// error body or a failed control reply). The wrapping error carries the
	// exchange's code and message.
	ErrExchange = errors.New("bridge: exchange error")
	// ErrRateLimited: the exchange refused a request for exceeding its rate
	// limit (Binance 429/418, Bybit 403). See RateLimitError.
	ErrRateLimited = errors.New("bridge: rate limited")

	// ErrConfig: a StreamConfig is invalid; the wrapping error names the field.
	ErrConfig = errors.New("bridge: invalid configuration")
	// ErrConnectionLost: a connection was lost and Resilience.AutoReconnect
	// is off, so Run stops.
	ErrConnectionLost = errors.New("bridge: connection lost")
	// ErrStale: a connection was silent for longer than the heartbeat
	// timeout and was replaced.
	ErrStale = errors.New("bridge: connection stale")
	// ErrSilent: a connection delivered no data for SilenceCheck while the
	// venue had data for its symbols (a silent feed), and was replaced.
	ErrSilent = errors.New("bridge: connection silent")
	// ErrSubscribe: the exchange did not acknowledge a subscription in time
	// or refused it.
	ErrSubscribe = errors.New("bridge: subscribe failed")
	// ErrUnknownSymbol: the symbol is not part of the stream.
	ErrUnknownSymbol = errors.New("bridge: unknown symbol")
	// ErrUnknownExchange: the exchange is not the stream's exchange.
	ErrUnknownExchange = errors.New("bridge: unknown exchange")
	// ErrClosed: the stream was shut down or closed.
	ErrClosed = errors.New("bridge: stream closed")
)

// RateLimitError is returned by REST calls the exchange refused for rate
// limiting. It wraps ErrRateLimited.
type RateLimitError struct {
	Status     int           // HTTP status: 429, 418 (IP ban) or 403 (Bybit)
	RetryAfter time.Duration // how long the exchange asked us to wait
	Banned     bool          // true for an IP ban (Binance 418, Bybit 403)
}

// Error describes the refusal and how long the exchange asked to wait.
func (e *RateLimitError) Error() string {
	kind := "rate limited"
	if e.Banned {
		kind = "IP banned"
	}
	return fmt.Sprintf("bridge: %s (HTTP %d), retry after %s", kind, e.Status, e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }
