package bridge

import (
	"context"
	"time"
)

// Channel is a set of kinds of market data a symbol can be subscribed to:
// one bit per kind, one bit per kline interval (closed bars) and one per
// kline interval's open-bar updates. See channels.go.
type Channel uint64

// Topic is one exchange stream: one channel of one symbol. It is the unit
// the runner shards over connections (a Binance stream, a Bybit topic arg).
type Topic struct {
	Symbol  string
	Channel Channel // exactly one bit
}

// FrameKind classifies a decoded inbound frame for the runner.
type FrameKind uint8

// Frame kinds.
const (
	FrameData     FrameKind = iota // market data: events were appended (possibly zero)
	FrameIgnored                   // a well-formed frame with nothing to emit
	FrameAck                       // a control reply that succeeded (subscribe, unsubscribe, list)
	FrameError                     // a control reply that failed: Frame.Err says why
	FramePong                      // an application-level pong
	FrameShutdown                  // the server announces it is going away: rotate the connection
)

// Frame is what Decode learned about a frame besides its events.
type Frame struct {
	Kind  FrameKind
	ReqID string // request id of a control reply, if any
	Err   error  // for FrameError: the exchange's error, wrapping ErrExchange
	// Symbol is, for FrameError, the symbol the refusal names when the venue
	// says (OKX: "instId:XYZ" in the message); the runner shows the error in
	// that symbol's state (md_state last_error) while the others run on.
	Symbol string
}

// BookMode is how a venue delivers order books.
type BookMode uint8

// Book modes.
const (
	// BookRESTSnapshot: the stream carries diffs only (U..u ranges); the book
	// starts from a REST snapshot and the documented buffering procedure
	// (Binance Spot).
	BookRESTSnapshot BookMode = iota
	// BookStreamSnapshot: the stream sends a snapshot first and deltas after;
	// any later snapshot resets the book; resubscribing yields a fresh
	// snapshot (Bybit v5).
	BookStreamSnapshot
	// BookStreamChained: as BookStreamSnapshot, but update ids are not
	// consecutive: each delta names the id of the update before it
	// (Event.PrevID; OKX prevSeqId == the previous seqId). See
	// bookchain_prev.go for the rule, keep-alives and venue resets.
	BookStreamChained
)

// streamed reports whether m is a stream-snapshot mode (the book is
// resynchronized by resubscribing).
func (m BookMode) streamed() bool { return m == BookStreamSnapshot || m == BookStreamChained }

// Heartbeat describes a venue's keep-alive rules.
type Heartbeat struct {
	// ClientPing is the application-level ping frame the client must send
	// every Interval (Bybit); nil when the server pings and the client only
	// answers with WebSocket pongs (Binance).
	ClientPing func(reqID int64) []byte
	Interval   time.Duration
}

// Limits are a venue's per-connection rules the runner must respect.
type Limits struct {
	MaxTopicsPerConn     int     // Binance 1024 streams
	MaxArgsPerRequest    int     // Bybit spot 10 args per subscribe; 0 = no limit
	MaxRequestArgsChars  int     // Bybit spot 21,000 characters of args per connection; 0 = no limit
	MaxInboundPerSecond  float64 // Binance 5 client messages per second (pings, pongs, control); 0 = no limit
	MaxConnectionAge     time.Duration
	ConnectsPerWindow    int // Binance 300 attempts / 5 min per IP; Bybit 500 / 5 min
	ConnectWindow        time.Duration
	MaxConnectionsPerIP  int // the seed's table: Binance 5, Bybit 20
	MaxFrameBytes        int64
	RecommendedBookDepth int
	// MaxOpsPerHour is the venue's budget of subscribe/unsubscribe requests
	// per connection and hour (OKX 480); 0 = no limit. A resubscription
	// that would exceed it replaces the connection instead (a new
	// connection has a fresh budget).
	MaxOpsPerHour int
}

// Exchange is one venue's adapter. Adapters only build URLs and frames,
// decode, and call REST; the runner owns dialing, pacing, heartbeats,
// reconnects, dedup, sequencing and state. Implementations must be safe
// for concurrent use by several connections.
type Exchange interface {
	// Name is the exchange id used in subjects and msg IDs: "binance",
	// "bybit" (spot) or "bybit-linear".
	Name() string

	// URL is the WebSocket URL to dial for a connection that will carry
	// topics. Venues that subscribe by URL (Binance combined streams) put
	// the topics in it and return no frames from SubscribeFrames.
	URL(topics []Topic) string

	// SubscribeFrames returns the control frames that subscribe topics on an
	// open connection, each request at most Limits.MaxArgsPerRequest args.
	// nextID yields unique request ids. The runner paces them under
	// Limits.MaxInboundPerSecond.
	SubscribeFrames(topics []Topic, nextID func() int64) [][]byte
	// UnsubscribeFrames is the inverse of SubscribeFrames (used to resync a
	// BookStreamSnapshot book by resubscribing).
	UnsubscribeFrames(topics []Topic, nextID func() int64) [][]byte

	// Decode parses one inbound text frame received at recvTS (Unix ns),
	// appends its events to dst and returns the extended slice. Errors wrap
	// ErrMalformed (the frame is dropped and counted) and never panic.
	// frame is only valid during the call: the runner reuses its memory for
	// the next frame, so events, Frame and errors must not refer to it
	// (copy what is kept, e.g. with string(frame)).
	Decode(frame []byte, recvTS int64, dst []Event) ([]Event, Frame, error)

	Heartbeat() Heartbeat
	Limits() Limits
	BookMode() BookMode

	// Snapshot fetches the order book of symbol over REST, rate-limited, as
	// a book.snapshot Event with LastID set.
	Snapshot(ctx context.Context, symbol string) (Event, error)
	// ServerTime returns the exchange's clock (for resilience.TimeSyncManager).
	ServerTime(ctx context.Context) (time.Time, error)
	// Trades returns up to limit trades of symbol with ids >= fromID in
	// ascending id order (REST backfill). Venues without consecutive trade
	// ids return ErrNotSupported.
	Trades(ctx context.Context, symbol string, fromID int64, limit int) ([]Event, error)
}
