package bridge

import (
	"cmp"
	"fmt"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// BookGapPolicy is what the runner does when a stream-snapshot order book
// (Bybit, BookStreamSnapshot) shows a sequence jump: a delta whose update id
// is not the previous one + 1, a delta with u = 1 (service restart) or a
// cross-sequence regression.
//
// EXCHANGES.md marks the gap rule of Bybit's orderbook.<depth> topics as
// UNCONFIRMED; the default treats every jump defensively as a gap. The
// policy is a single field so the rule is easy to change once the venue's
// behaviour is confirmed.
type BookGapPolicy uint8

// Book gap policies.
const (
	// GapResubscribe (default): count the gap, drop deltas and resubscribe
	// the topic (UnsubscribeFrames + SubscribeFrames) to obtain a fresh
	// snapshot, which is emitted before any further delta.
	GapResubscribe BookGapPolicy = iota
	// GapDropPacket: count the gap and drop only the offending delta
	// (EXCHANGES.md's rule for seq regressions on orderbook.full); the book
	// keeps its last update id. Use only if the venue guarantees jumps are
	// harmless.
	GapDropPacket
	// GapAccept: emit the delta anyway and continue from its update id (for
	// depths whose update ids are known not to be consecutive). Gaps are
	// still counted.
	GapAccept
)

// String returns the policy's name.
func (p BookGapPolicy) String() string {
	switch p {
	case GapResubscribe:
		return "resubscribe"
	case GapDropPacket:
		return "drop-packet"
	case GapAccept:
		return "accept"
	}
	return "unknown"
}

// Defaults of StreamConfig's zero fields.
const (
	DefaultConnectSpacing      = 250 * time.Millisecond
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultSubscribeTimeout    = 10 * time.Second
	DefaultRotationMargin      = 10 * time.Minute
	DefaultOverlapTimeout      = 15 * time.Second
	DefaultStateInterval       = 5 * time.Second
	DefaultTimeSyncInterval    = 5 * time.Minute
	DefaultSnapshotConcurrency = 4
	DefaultSnapshotsPerMinute  = 600
	DefaultBackfillMax         = 100_000
	DefaultBackfillPage        = 1000
	DefaultPendingLimit        = 50_000
	DefaultBookBufferLimit     = 1000
	DefaultDedupWindow         = 2048
	DefaultDedupTTL            = 2 * time.Minute
	DefaultResyncTimeout       = 15 * time.Second
	DefaultMaxFrameBytes       = 16 << 20
	DefaultRecentTradesLimit   = 1000
	DefaultQuietCheck          = 5 * time.Second
	DefaultSilenceCheck        = time.Minute
)

// StreamConfig configures a Stream. The zero value of every field except
// Exchange and Symbols means the documented default.
//
// It is the Go form of the seed's
// qd.stream(["BTCUSDT"], source="binance").resolution("tick").resilience(cfg):
// Exchange is the source, Symbols the list, Channels the resolution (trades
// and/or order book), Resilience the cfg.
type StreamConfig struct {
	// Exchange is the venue adapter (bridge/binance, bridge/bybit). Required.
	Exchange Exchange
	// Symbols are the exchange's upper-case symbols, each [A-Za-z0-9_-]{1,64},
	// no duplicates. Required.
	Symbols []string
	// Channels to subscribe for every symbol. Default ChannelTrade. Beyond
	// trades and books: ChannelBBO, ChannelTicker, ChannelLiquidation and
	// KlineChannel(iv) / KlineOpenChannel(iv) (the seed's resolution "1m" is
	// KlineChannel(Interval1m)), as far as the adapter's ChannelProvider
	// has them; NewStream rejects the others naming the allowed ones.
	Channels Channel
	// Resilience switches the resilience features. nil means
	// resilience.DefaultResilienceConfig(); pass
	// resilience.DisabledResilienceConfig() for the seed's resilience=False.
	//
	// AutoReconnect: reconnect lost connections (off: Run returns
	// ErrConnectionLost on the first loss). MaxReconnectAttempts,
	// ReconnectDelay, ReconnectDelayMax: the backoff before a connection is
	// reported FAILED (it keeps retrying at ReconnectDelayMax after that).
	// HeartbeatInterval: the silence after which a connection is stale and
	// replaced, unless HeartbeatTimeout is set. RateLimitEnabled:
	// the connect token bucket and the snapshot rate limit. SequenceTracking:
	// trade gap detection and REST backfill (order books are always
	// sequence-checked: a book without it is wrong). TimeSyncEnabled: the
	// periodic clock offset measurement.
	Resilience *resilience.ResilienceConfig
	// Instance names this process in SymbolState (md_state keys). Default:
	// the host name, sanitized.
	Instance string

	// Optional collaborators; nil leaves each feature at its default.

	// StateSink receives per-symbol connection state (on every transition
	// and every StateInterval). nil: state is not reported.
	StateSink StateSink
	// SnapshotRequester routes order book resyncs of BookRESTSnapshot venues
	// through the process's snapshot service (the publisher wires it to
	// mdctl.snapshot.*): it publishes the snapshot and returns its last
	// update id, and the stream resumes deltas after it. nil: the stream
	// fetches and emits snapshots itself.
	SnapshotRequester SnapshotRequester
	// TradeResumer makes a stream of a venue with consecutive trade ids
	// (SequenceTracking on, trades subscribed) ask it once per symbol at
	// start where the destination's trades end (at most ResumeTimeout for
	// all symbols; a failure is logged and the symbol starts from the live
	// flow as without a resumer). A symbol resumed at id R treats its first
	// live trade F > R+1 as the gap R+1..F-1, backfilled over REST like any
	// other (bounded by BackfillMax; ids the venue no longer serves are
	// counted as missing); live trades with ids <= R are dropped as already
	// emitted. nil: every symbol starts from the live flow.
	TradeResumer TradeResumer
	// ConnectGate is the venue's connect gate shared with the process's
	// other streams of the same venue (the venue's connect limit is per
	// IP). nil: the stream has a gate of its own. With
	// Resilience.RateLimitEnabled off it is not used either (only
	// ConnectSpacing applies).
	ConnectGate *ConnectGate

	// MaxTopicsPerConn caps the topics (symbol x channel) per connection
	// below the venue's Limits.MaxTopicsPerConn. 0 = the venue's limit.
	MaxTopicsPerConn int
	// MaxConnections caps the connections the plan may use (make-before-
	// break rotation briefly adds one). 0 = Limits.MaxConnectionsPerIP;
	// negative = no cap. When the symbols need more connections than the
	// cap even at the venue's maximum topics per connection, the plan uses
	// more and logs a warning.
	MaxConnections int
	// ConnectSpacing is the minimum time between two connection attempts of
	// the stream, on top of the venue's connect token bucket. Default 250ms.
	ConnectSpacing time.Duration
	// HandshakeTimeout bounds the WebSocket handshake. Default 10s.
	HandshakeTimeout time.Duration
	// SubscribeTimeout bounds the wait for subscribe acknowledgements.
	// Default 10s.
	SubscribeTimeout time.Duration
	// HeartbeatTimeout is the silence after which a connection is stale and
	// replaced. Default Resilience.HeartbeatInterval (30s with defaults).
	HeartbeatTimeout time.Duration
	// RotationAge is the connection age at which a make-before-break
	// rotation starts. Default Limits.MaxConnectionAge - 10m (23h50m for
	// Binance); no rotation when the venue has no age limit. Negative
	// disables rotation.
	RotationAge time.Duration
	// OverlapTimeout bounds a rotation's overlap phase: after it the
	// replacement takes over even if quiet topics showed no overlap (gap
	// repair then covers them). Default 15s.
	OverlapTimeout time.Duration
	// StateInterval is the period of the StateSink refresh. Default 5s.
	StateInterval time.Duration
	// TimeSyncInterval is the period of the clock offset measurement.
	// Default 5m.
	TimeSyncInterval time.Duration
	// SnapshotConcurrency bounds concurrent REST snapshot fetches of the
	// stream. Default 4.
	SnapshotConcurrency int
	// SnapshotsPerMinute rate-limits REST snapshot fetches of the stream
	// (burst 1/20 of it, at least 1). Default 600.
	SnapshotsPerMinute int
	// BackfillMax is the most trades backfilled for one gap; older missing
	// trades are counted as Missing. Default 100000.
	BackfillMax int
	// BackfillPage is the page size of Exchange.Trades calls (venue maximum
	// 1000). Default 1000.
	BackfillPage int
	// PendingLimit bounds the live trades buffered per symbol while a
	// backfill runs (a trade dropped at the bound is backfilled later).
	// Default 50000.
	PendingLimit int
	// BookBufferLimit bounds the deltas buffered per BookRESTSnapshot book
	// while its snapshot request is in flight; the oldest are dropped (the
	// snapshot then has to be newer, which the procedure checks). A book
	// still queued for its request (at startup many books wait for REST
	// snapshots at the venue's weight limit) keeps at most 8, since the
	// snapshot will cover older deltas. Default 1000.
	BookBufferLimit int
	// DedupWindow and DedupTTL size the per-symbol trade deduplicators.
	// Defaults 2048 ids and 2m.
	DedupWindow int
	DedupTTL    time.Duration
	// BookGapPolicy is the Bybit order book gap rule. Default GapResubscribe.
	BookGapPolicy BookGapPolicy
	// ResyncTimeout is how long a stream-snapshot book waits for the fresh
	// snapshot after a resubscribe before resubscribing again. Default 15s.
	ResyncTimeout time.Duration
	// QuietCheck is how long after a reconnect a symbol that has received
	// nothing on the new connection is verified over REST: trades with
	// consecutive ids are fetched from the last id on (and emitted if any
	// were missed), a BookRESTSnapshot book is compared with a snapshot
	// (and reset to it if updates were missed). Busy symbols reveal gaps by
	// their next message; this covers quiet ones. A dropped (malformed)
	// frame schedules the same check. Verifications run one at a time, at
	// most one per symbol and kind, about one per second stream-wide.
	// Default 5s; negative disables.
	QuietCheck time.Duration
	// SilenceCheck is how long a connection may deliver no data frame
	// (while its heartbeat is fine: pings and pongs still flow) before the
	// bridge asks the venue whether it has data the connection did not
	// deliver: the latest trade of up to three of its symbols (or, without
	// trades, a book snapshot, or for a stream-snapshot book a resubscribe
	// that must answer within ResyncTimeout). If the venue has moved on,
	// the feed is silent and the connection is replaced (reconnect,
	// backfill, resync); if not, the symbols are just quiet and nothing
	// happens until the next SilenceCheck. A silent feed is so detected
	// within SilenceCheck plus one probe (a REST round trip, or
	// ResyncTimeout). Default 1m; negative disables.
	SilenceCheck time.Duration
	// RecentTradesLimit is the number of recent trades requested for a
	// best-effort backfill on venues without consecutive trade ids (Bybit),
	// when the adapter implements RecentTrader. Default 1000.
	RecentTradesLimit int
}

// settings is a validated StreamConfig with defaults applied.
type settings struct {
	StreamConfig
	res      resilience.ResilienceConfig
	limits   Limits
	exName   string
	perConn  int
	maxConns int // 0 = no cap
}

// validate checks c and fills defaults. Errors wrap ErrConfig.
func (c StreamConfig) validate() (*settings, error) {
	if c.Exchange == nil {
		return nil, fmt.Errorf("%w: Exchange is required", ErrConfig)
	}
	name := c.Exchange.Name()
	if err := ValidateIdent(name); err != nil {
		return nil, fmt.Errorf("%w: exchange name: %w", ErrConfig, err)
	}
	if len(c.Symbols) == 0 {
		return nil, fmt.Errorf("%w: no symbols", ErrConfig)
	}
	seen := make(map[string]struct{}, len(c.Symbols))
	for _, s := range c.Symbols {
		if err := ValidateIdent(s); err != nil {
			return nil, fmt.Errorf("%w: symbol: %w", ErrConfig, err)
		}
		if _, dup := seen[s]; dup {
			return nil, fmt.Errorf("%w: symbol %q listed twice", ErrConfig, s)
		}
		seen[s] = struct{}{}
	}
	if c.Channels == 0 {
		c.Channels = ChannelTrade
	}
	if err := checkChannels(c.Exchange, c.Channels); err != nil {
		return nil, err
	}
	s := &settings{exName: name, limits: c.Exchange.Limits()}
	if c.Resilience == nil {
		s.res = resilience.DefaultResilienceConfig()
	} else {
		s.res = *c.Resilience
	}
	if err := s.res.Validate(); err != nil {
		return nil, fmt.Errorf("%w: resilience: %w", ErrConfig, err)
	}
	if c.Instance == "" {
		c.Instance = HostIdent()
	} else if err := ValidateIdent(c.Instance); err != nil {
		return nil, fmt.Errorf("%w: instance: %w", ErrConfig, err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ConnectSpacing", c.ConnectSpacing}, {"HandshakeTimeout", c.HandshakeTimeout},
		{"SubscribeTimeout", c.SubscribeTimeout}, {"HeartbeatTimeout", c.HeartbeatTimeout},
		{"OverlapTimeout", c.OverlapTimeout}, {"StateInterval", c.StateInterval},
		{"TimeSyncInterval", c.TimeSyncInterval}, {"DedupTTL", c.DedupTTL},
		{"ResyncTimeout", c.ResyncTimeout},
	} {
		if d.v < 0 {
			return nil, fmt.Errorf("%w: %s must not be negative (got %s)", ErrConfig, d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"MaxTopicsPerConn", c.MaxTopicsPerConn}, {"SnapshotConcurrency", c.SnapshotConcurrency},
		{"SnapshotsPerMinute", c.SnapshotsPerMinute}, {"BackfillMax", c.BackfillMax},
		{"BackfillPage", c.BackfillPage}, {"PendingLimit", c.PendingLimit}, {"BookBufferLimit", c.BookBufferLimit},
		{"DedupWindow", c.DedupWindow}, {"RecentTradesLimit", c.RecentTradesLimit},
	} {
		if n.v < 0 {
			return nil, fmt.Errorf("%w: %s must not be negative (got %d)", ErrConfig, n.name, n.v)
		}
	}
	if c.BookGapPolicy > GapAccept {
		return nil, fmt.Errorf("%w: unknown BookGapPolicy %d", ErrConfig, c.BookGapPolicy)
	}
	c.ConnectSpacing = cmp.Or(c.ConnectSpacing, DefaultConnectSpacing)
	c.HandshakeTimeout = cmp.Or(c.HandshakeTimeout, DefaultHandshakeTimeout)
	c.SubscribeTimeout = cmp.Or(c.SubscribeTimeout, DefaultSubscribeTimeout)
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = s.res.HeartbeatConfig().Timeout
	}
	c.OverlapTimeout = cmp.Or(c.OverlapTimeout, DefaultOverlapTimeout)
	c.StateInterval = cmp.Or(c.StateInterval, DefaultStateInterval)
	c.TimeSyncInterval = cmp.Or(c.TimeSyncInterval, DefaultTimeSyncInterval)
	c.DedupTTL = cmp.Or(c.DedupTTL, DefaultDedupTTL)
	c.ResyncTimeout = cmp.Or(c.ResyncTimeout, DefaultResyncTimeout)
	c.QuietCheck = cmp.Or(c.QuietCheck, DefaultQuietCheck)
	c.SilenceCheck = cmp.Or(c.SilenceCheck, DefaultSilenceCheck)
	c.SnapshotConcurrency = cmp.Or(c.SnapshotConcurrency, DefaultSnapshotConcurrency)
	c.SnapshotsPerMinute = cmp.Or(c.SnapshotsPerMinute, DefaultSnapshotsPerMinute)
	c.BackfillMax = cmp.Or(c.BackfillMax, DefaultBackfillMax)
	c.BackfillPage = cmp.Or(c.BackfillPage, DefaultBackfillPage)
	c.PendingLimit = cmp.Or(c.PendingLimit, DefaultPendingLimit)
	c.BookBufferLimit = cmp.Or(c.BookBufferLimit, DefaultBookBufferLimit)
	c.DedupWindow = cmp.Or(c.DedupWindow, DefaultDedupWindow)
	c.RecentTradesLimit = cmp.Or(c.RecentTradesLimit, DefaultRecentTradesLimit)
	if c.RotationAge == 0 && s.limits.MaxConnectionAge > 0 {
		margin := DefaultRotationMargin
		if margin > s.limits.MaxConnectionAge/10 {
			margin = s.limits.MaxConnectionAge / 10
		}
		c.RotationAge = s.limits.MaxConnectionAge - margin
	}
	if s.limits.MaxFrameBytes <= 0 {
		s.limits.MaxFrameBytes = DefaultMaxFrameBytes
	}
	s.perConn = s.limits.MaxTopicsPerConn
	if c.MaxTopicsPerConn > 0 && (s.perConn <= 0 || c.MaxTopicsPerConn < s.perConn) {
		s.perConn = c.MaxTopicsPerConn
	}
	switch {
	case c.MaxConnections > 0:
		s.maxConns = c.MaxConnections
	case c.MaxConnections == 0 && s.limits.MaxConnectionsPerIP > 0:
		s.maxConns = s.limits.MaxConnectionsPerIP
	}
	s.StreamConfig = c
	return s, nil
}

// reconnectConfig maps the seed's knobs onto resilience.ReconnectConfig.
func (s *settings) reconnectConfig() resilience.ReconnectConfig { return s.res.ReconnectConfig() }
