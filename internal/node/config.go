package node

import (
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

// Config is what a node is built from. The zero value of every field but
// Subscriptions is valid.
type Config struct {
	// Instance is the replica's name (md_state keys, snapshot requests).
	Instance string
	// Publisher configures the stream, the KV bucket, the control subject
	// and the publish buffer. It is validated by New.
	Publisher publisher.Config
	// Subscriptions are the streams to run, one bridge.Stream each.
	// Subscriptions of the same exchange share one adapter.
	Subscriptions []Subscription
	// Venues are the exchange endpoints, depths and REST budgets.
	Venues Venues
	// Resilience switches the resilience features of every stream (each
	// stream gets its own copy). nil: resilience.DefaultResilienceConfig.
	Resilience *resilience.ResilienceConfig
	// Tune, if set, adjusts each stream's configuration last (heartbeat,
	// rotation age, ... in tests and the chaos soak).
	Tune func(*bridge.StreamConfig)
	// Hooks wrap the pieces handed to the streams and the snapshot
	// service (metrics, recording). Nil hooks pass the pieces unchanged.
	Hooks Hooks
	// Cluster, if set, partitions the work over the replicas that share
	// the NATS server: each (exchange, symbol) of the subscriptions is
	// carried by Cluster.Redundancy of them (see package cluster). Its
	// Instance and Units are filled by the node (Instance, the units of
	// Subscriptions); its bucket takes Publisher's storage and replicas
	// when unset. nil: this replica carries every subscription.
	Cluster *cluster.Config
	// Runtime, if set, makes the subscription set follow a key of a KV
	// bucket (see Runtime): operators change it without restarts.
	// Subscriptions is then the set used while the key is absent (or
	// holds a spec the node rejects at start). The streams are then built
	// and replaced at run time and Hooks.Source does not apply.
	Runtime *Runtime
	// UniverseRefresh is how often the venues' instrument lists behind
	// universe patterns ("*USDT") are read again (default 5 min).
	UniverseRefresh time.Duration
	// OnStreamError, if set, is called (from the stream's goroutine) when
	// a stream's Run returns an error; err names the exchange, as in
	// "binance stream: ...". A stream that stopped stays stopped.
	OnStreamError func(err error)
}

// Subscription is one bridge.Stream: an exchange, its channels and
// symbols.
type Subscription struct {
	Exchange string         // "binance", "binance-usdm", "bybit" (spot), "bybit-linear", "okx" (SPOT) or "okx-swap"
	Channels bridge.Channel // bridge.ChannelTrade, bridge.ChannelBook or both
	// Symbols are exchange symbols, or universe patterns where '*'
	// stands for any run of characters ("*USDT", "*"): every symbol of
	// the venue's instrument list (status TRADING / Trading) that
	// matches, resolved at start and every Config.UniverseRefresh
	// (binance, bybit, bybit-linear).
	Symbols []string
}

// String renders s as a subscription spec group,
// "<exchange>:<channels>:<symbols>".
func (s Subscription) String() string {
	return s.Exchange + ":" + s.Channels.String() + ":" + strings.Join(s.Symbols, ",")
}

// Defaults of Runtime.
const (
	DefaultConfigBucket = "md_config"
	DefaultSubscribeKey = "subscribe"
	// StatusKeyPrefix starts the key of each replica's report of the
	// subscription set it runs: "active.<instance>" (the instance name
	// with characters outside [A-Za-z0-9_-] replaced by '_'), a
	// SubscribeStatus in JSON.
	StatusKeyPrefix = "active."
)

// Runtime configures runtime subscriptions: the subscription spec lives in
// key Key of the KV bucket Bucket; every replica watches it and converges
// on it (starts the units it adds, stops those it removes, restarts those
// whose channels change). A spec the node cannot use (Parse or the stream
// configuration rejects it) is logged, counted and reported in the
// replica's status key; the running set stays. A deleted key returns the
// node to Config.Subscriptions.
type Runtime struct {
	// Bucket is the KV bucket of the spec (default md_config); it is
	// created at start if missing, with the state bucket's storage and
	// replicas.
	Bucket string
	// Key is the spec's key (default subscribe).
	Key string
	// Parse parses a spec (required): cmd/mdbridge passes its
	// MDB_SUBSCRIBE parser, so both reject the same specs alike.
	Parse func(spec string) ([]Subscription, error)
}

// Venues are the endpoints and REST budgets of the exchanges. Empty URLs
// and zero depths take the adapters' defaults (the real exchanges); zero
// budgets take resilience.ExchangeDefaults. Bybit spot and linear share
// one budget, as Bybit limits per IP.
type Venues struct {
	BinanceWSURL, BinanceRESTURL string
	BinanceBookDepth             int
	BinanceWeightPerMinute       int
	BybitWSURL, BybitRESTURL     string
	BybitBookDepth               int
	BybitRequestsPerMinute       int
	OKXWSURL, OKXRESTURL         string // one pair for okx and okx-swap
	// Binance USD-M futures (exchange id "binance-usdm"): its own venue,
	// with its own REST budget and connection gate.
	BinanceUSDMWSURL, BinanceUSDMRESTURL string
	BinanceUSDMBookDepth                 int
	BinanceUSDMWeightPerMinute           int
	// BinanceUSDMOpenInterestEvery is binance.Config.OpenInterestEvery
	// (0: 1m; negative: no open interest in binance-usdm tickers).
	BinanceUSDMOpenInterestEvery time.Duration
	// IPShare is the number of replicas sharing one egress IP
	// (MDB_IP_SHARE; 0 or 1: this replica has its IP to itself). The
	// node gives each 1/IPShare of the per-IP limits it knows itself:
	// the venues' connection attempts per window (the connect gates),
	// their connections per IP (StreamConfig.MaxConnections when not
	// set), OKX's REST budget and the binance-usdm live weight limit. The
	// configured budgets above are taken as already divided (cmd/mdbridge
	// divides MDB_BINANCE_WEIGHT_PER_MINUTE and the others).
	IPShare int
}

// share is this replica's part of a per-IP limit n (at least 1; n <= 0,
// no limit, stays).
func (v Venues) share(n int) int {
	if v.IPShare <= 1 || n <= 0 {
		return n
	}
	return max(n/v.IPShare, 1)
}

// shareLimits returns l with its per-IP connection limits divided among
// the replicas sharing the IP.
func (v Venues) shareLimits(l bridge.Limits) bridge.Limits {
	l.ConnectsPerWindow = v.share(l.ConnectsPerWindow)
	l.MaxConnectionsPerIP = v.share(l.MaxConnectionsPerIP)
	return l
}

// Hooks wrap what the node hands to its streams and snapshot service.
type Hooks struct {
	// Publisher wraps the JetStream publisher the streams publish to.
	Publisher func(bridge.Publisher) bridge.Publisher
	// StateSink wraps the md_state writer.
	StateSink func(bridge.StateSink) bridge.StateSink
	// Requester wraps the snapshot requester of the control subject.
	Requester func(bridge.SnapshotRequester) bridge.SnapshotRequester
	// Source builds the snapshot service's source from the streams
	// (default: the streams themselves, bridge.Streams).
	Source func(bridge.Streams) publisher.SnapshotSource
}
