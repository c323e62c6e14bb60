package chaos

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// Defaults of Config's zero fields.
const (
	DefaultDuration         = 10 * time.Minute
	DefaultWarmup           = 20 * time.Second
	DefaultSettle           = 25 * time.Second
	DefaultDrainTimeout     = 2 * time.Minute
	DefaultFaultEvery       = 3 * time.Second
	DefaultHeartbeatTimeout = 5 * time.Second
	DefaultRotationAge      = 75 * time.Second
	DefaultSampleEvery      = 5 * time.Second
	DefaultSnapshotEvery    = 5 * time.Second
	DefaultBybitDepth       = 50
	DefaultReplicas         = 3
	DefaultRedundancy       = 2
	// MaxReplicas bounds Config.Replicas (one process, two cores).
	MaxReplicas = 6
)

// Resource bounds checked at the end of a soak: the steady-state sample
// taken after the faults (all replicas up, generation on, every fault
// cleared, after a forced GC) against the one taken at the end of warm-up
// in the same conditions.
const (
	// GoroutineGrowthPct and GoroutineGrowthAbs bound goroutine growth:
	// final <= baseline*(1+pct/100) + abs.
	GoroutineGrowthPct = 10
	GoroutineGrowthAbs = 40
	// HeapGrowthFactor and HeapGrowthAbs bound the live heap:
	// final <= baseline*factor + abs.
	HeapGrowthFactor = 1.5
	HeapGrowthAbs    = 48 << 20
	// RSSGrowthFactor and RSSGrowthAbs bound the resident set size (after
	// freed memory was returned to the OS): final <= baseline*factor + abs.
	RSSGrowthFactor = 1.5
	RSSGrowthAbs    = 96 << 20
	// RaceRSSPerPeakHeap: under the race detector (go test -race) the RSS
	// bound grows by this many times the peak in-use heap sampled: the
	// detector's shadow memory for the heap at its peak stays resident
	// after the heap shrank (debug.FreeOSMemory does not return it), so the
	// RSS there measures the peak, not a leak. The in-use heap bound (after
	// GC) is the same with and without the detector.
	RaceRSSPerPeakHeap = 2
)

// Config configures a soak. The zero value of every field means the default
// named in its comment.
type Config struct {
	// Duration is how long faults are injected. Default 10m.
	Duration time.Duration
	// Seed derives the fault plan and the simulator's market data. Every
	// value, including 0, is a valid seed.
	Seed uint64
	// Warmup runs without faults before the plan starts. Default 20s.
	Warmup time.Duration
	// Settle runs without faults after the plan (generation still on) so
	// every recovery completes before generation stops. Default 25s.
	Settle time.Duration
	// DrainTimeout bounds the wait for the publishers to drain after
	// generation stopped. Default 2m.
	DrainTimeout time.Duration
	// FaultEvery is the mean interval between two fault starts (faults
	// last longer than that, so they overlap). Default 3s.
	FaultEvery time.Duration
	// Markets are the simulated markets (default DefaultMarkets()). Every
	// market is subscribed by both replicas: trades and book, or only the
	// side with a positive rate (marketChannels; per exchange, the union of
	// its markets'). okx-swap markets must have TradeRate 0.
	Markets []exsim.MarketConfig
	// Kinds restricts the fault kinds planned (default AllKinds()).
	Kinds []FaultKind
	// HeartbeatTimeout is the bridge's silence limit, short so that stalls
	// are detected within the soak. Default 5s.
	HeartbeatTimeout time.Duration
	// RotationAge makes the bridge rotate connections make-before-break at
	// this age (the 24 h rotation, shortened). Default 75s; negative keeps
	// the venue default (no rotation within a soak).
	RotationAge time.Duration
	// SampleEvery is the period of the goroutine and memory samples.
	// Default 5s.
	SampleEvery time.Duration
	// SnapshotEvery is the period of the snapshot requests sent on the
	// control subject during the fault phase (one request per market per
	// round, as a consumer would send them), overlapping the faults.
	// Default 5s; negative sends none.
	SnapshotEvery time.Duration
	// BybitDepth is the Bybit orderbook depth the replicas subscribe
	// (MDB_BYBIT_BOOK_DEPTH: 1, 50, 200 or 1000) and the number of levels
	// per side compared. Default 50.
	BybitDepth int
	// Replicas is the number of bridge replicas started at the beginning
	// (a replica_add fault starts one more and keeps it). Default 3, at
	// most MaxReplicas.
	Replicas int
	// Redundancy is the cluster's R (MDB_REDUNDANCY): how many replicas
	// carry each (exchange, symbol) unit. Default 2; at most Replicas
	// (R = Replicas: every replica carries every unit).
	Redundancy int
	// NATSPort is the embedded NATS server's port; 0 picks a free one.
	NATSPort int
	// Dir holds the JetStream store; "" uses a temporary directory that is
	// removed at the end.
	Dir string
	// HeapProfile, if set, is a file that receives a heap profile taken
	// with the final steady sample (to investigate resource growth).
	HeapProfile string
	// ComponentLogger receives the logs of the simulator, NATS and the
	// replicas (nil discards them). Run's logger gets the harness's own
	// progress lines.
	ComponentLogger *slog.Logger
}

// DefaultMarkets are the soak's markets: three Binance symbols, two Bybit
// spot symbols, one Bybit linear, one Binance USD-M symbol, OKX SPOT
// BTC-USDT (trades only) and the BTC-USDT-SWAP book, busy and quiet ones (a quiet
// market exercises the quiet-symbol checks and the slow-market edges of the
// dedup windows).
func DefaultMarkets() []exsim.MarketConfig {
	return []exsim.MarketConfig{
		{Venue: exsim.Binance, Symbol: "BTCUSDT", TradeRate: 25, BookRate: 20},
		{Venue: exsim.Binance, Symbol: "ETHUSDT", TradeRate: 10, BookRate: 10},
		{Venue: exsim.Binance, Symbol: "SOLUSDT", TradeRate: 2, BookRate: 2},
		{Venue: exsim.BybitSpot, Symbol: "BTCUSDT", TradeRate: 20, BookRate: 15},
		{Venue: exsim.BybitSpot, Symbol: "ETHUSDT", TradeRate: 2, BookRate: 3},
		{Venue: exsim.BybitLinear, Symbol: "BTCUSDT", TradeRate: 10, BookRate: 10},
		{Venue: exsim.BinanceUSDM, Symbol: "BTCUSDT", TradeRate: 15, BookRate: 15},
		// OKX: SPOT trades only (the replicas' okx stream is then
		// trades-all on /ws/v5/business: consecutive ids, backfilled), the
		// swap's book only (aggregated /public trades are not backfillable
		// and carry no fill range the soak could reconcile exactly).
		{Venue: exsim.OKXSpot, Symbol: "BTC-USDT", TradeRate: 15},
		{Venue: exsim.OKXSwap, Symbol: "BTC-USDT-SWAP", BookRate: 12},
	}
}

// okxBookDepth is the depth of OKX's books channel (the levels compared).
const okxBookDepth = 400

// marketChannels are the channels the replicas subscribe for m: trades if
// its TradeRate is positive, the book if its BookRate is; a market idle in
// both gets both. The channels of one exchange are the union of its
// markets' (one node subscription per exchange).
func marketChannels(m exsim.MarketConfig) bridge.Channel {
	var ch bridge.Channel
	if m.TradeRate > 0 {
		ch |= bridge.ChannelTrade
	}
	if m.BookRate > 0 {
		ch |= bridge.ChannelBook
	}
	if ch == 0 {
		ch = bridge.ChannelTrade | bridge.ChannelBook
	}
	return ch
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Duration, DefaultDuration)
	def(&c.Warmup, DefaultWarmup)
	def(&c.Settle, DefaultSettle)
	def(&c.DrainTimeout, DefaultDrainTimeout)
	def(&c.FaultEvery, DefaultFaultEvery)
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.RotationAge, DefaultRotationAge)
	def(&c.SampleEvery, DefaultSampleEvery)
	def(&c.SnapshotEvery, DefaultSnapshotEvery)
	if c.BybitDepth == 0 {
		c.BybitDepth = DefaultBybitDepth
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Redundancy == 0 {
		c.Redundancy = min(DefaultRedundancy, c.Replicas)
	}
	if len(c.Markets) == 0 {
		c.Markets = DefaultMarkets()
	}
	if len(c.Kinds) == 0 {
		c.Kinds = AllKinds()
	}
	return c
}

// Validate reports the first invalid field, naming it. Zero fields are
// valid (they take their defaults).
func (c Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Duration", c.Duration}, {"Warmup", c.Warmup}, {"Settle", c.Settle},
		{"DrainTimeout", c.DrainTimeout}, {"FaultEvery", c.FaultEvery},
		{"HeartbeatTimeout", c.HeartbeatTimeout}, {"SampleEvery", c.SampleEvery},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s must not be negative (got %s)", ErrConfig, d.name, d.v)
		}
	}
	if c.FaultEvery > 0 && c.FaultEvery < 100*time.Millisecond {
		return fmt.Errorf("%w: FaultEvery %s is below 100ms", ErrConfig, c.FaultEvery)
	}
	switch c.BybitDepth {
	case 0, 1, 50, 200, 1000:
	default:
		return fmt.Errorf("%w: BybitDepth %d: want 1, 50, 200 or 1000", ErrConfig, c.BybitDepth)
	}
	if c.Replicas < 0 || c.Replicas > MaxReplicas {
		return fmt.Errorf("%w: Replicas %d: want 1 to %d (0: %d)", ErrConfig, c.Replicas, MaxReplicas, DefaultReplicas)
	}
	if c.Redundancy < 0 {
		return fmt.Errorf("%w: Redundancy %d must not be negative", ErrConfig, c.Redundancy)
	}
	if reps := cmp.Or(c.Replicas, DefaultReplicas); c.Redundancy > reps {
		return fmt.Errorf("%w: Redundancy %d exceeds Replicas %d", ErrConfig, c.Redundancy, reps)
	}
	if c.NATSPort < 0 || c.NATSPort > 65535 {
		return fmt.Errorf("%w: NATSPort %d out of range", ErrConfig, c.NATSPort)
	}
	seen := map[string]bool{}
	for _, m := range c.Markets {
		if !m.Venue.Valid() {
			return fmt.Errorf("%w: market %s:%s: unknown venue", ErrConfig, m.Venue, m.Symbol)
		}
		k := string(m.Venue) + ":" + m.Symbol
		if seen[k] {
			return fmt.Errorf("%w: market %s listed twice", ErrConfig, k)
		}
		seen[k] = true
		if m.Venue == exsim.OKXSwap && m.TradeRate > 0 {
			return fmt.Errorf("%w: market %s: okx-swap trades (aggregates on /ws/v5/public, not backfillable, one id per aggregate) are not reconciled by the soak: set its TradeRate to 0 (book only)", ErrConfig, k)
		}
	}
	all := AllKinds()
	for _, k := range c.Kinds {
		if !slices.Contains(all, k) {
			return fmt.Errorf("%w: unknown fault kind %q (known: %v)", ErrConfig, k, all)
		}
	}
	return nil
}
