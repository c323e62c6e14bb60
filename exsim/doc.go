// Package exsim is an exchange simulator: an in-process server on loopback
// that speaks Binance Spot and Bybit v5 public market data (WebSocket
// streams and REST) closely enough that a client written for the real
// exchanges works against it unchanged, misbehaves on demand (fault
// injection), and records what it sent (ground truth) so tests can prove
// that nothing was lost.
//
// # Markets
//
// Each configured market (venue + symbol) has one generator: a seeded
// random walk producing taker orders (one to three trades at one price,
// consecutive Binance trade ids) and order-book updates (one to three
// level changes each). The same Seed gives the same event sequence. Every
// connection subscribed to a market receives the same pre-encoded frames
// (fan-out), so two clients see identical trade and update ids.
//
// # Protocol
//
// Binance: /ws/<stream>[/<stream>...] and /stream?streams=a/b (combined
// wrapper), timeUnit=MICROSECOND, live SUBSCRIBE, UNSUBSCRIBE,
// LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY (combined), streams
// <s>@trade, @aggTrade, @depth, @depth@100ms, @depth@1000ms,
// @depth<5|10|20>[@100ms], @bookTicker; a ping every PingInterval with
// a payload, disconnect when no pong echoes it within PongTimeout; at most
// InboundLimit client messages per second; MaxStreams streams; REST
// /api/v3/{ping,time,exchangeInfo,depth,trades,historicalTrades,aggTrades}
// with request weights, X-MBX-USED-WEIGHT-1M, 429 and 418 with
// Retry-After. Bybit: /v5/public/spot and /v5/public/linear, subscribe,
// unsubscribe and ping with their replies, publicTrade.<sym> and
// orderbook.{1,50,200,1000}.<sym> (snapshot, then deltas with consecutive
// u), idle cut; REST /v5/market/{time,orderbook,recent-trade}, 403 over
// the per-IP limit.
//
// Simulator choices where EXCHANGES.md marks behaviour UNCONFIRMED: error
// replies use {"error":{"code":N,"msg":..},"id":..}; a Bybit request with
// a bad topic fails as a whole with "error:handler not found,topic:<t>"
// (unknown symbol: "error:Invalid symbol :[<t>]"); the Bybit linear pong
// has the spot shape. Depth diffs are not aggregated over 100 ms or 1 s:
// each book update is one frame on every diff stream.
//
// # Delivery and ground truth
//
// A connection has a bounded send queue drained by one writer goroutine
// that batches frames into few writes. A client that lets the queue fill
// is disconnected as a slow consumer (or, with Config.Backpressure, the
// generator waits). An id counts as delivered when the writer hands the
// buffer holding it to the socket; it is recorded just before that write,
// so once a client has read a frame its ids are in the truth. Ids in
// frames still queued or buffered when a connection is cut are not
// delivered; a write that fails midway counts as delivered (the client may
// have received part of it), so "never delivered" is always a safe claim.
// Delivered is not received: when a connection closes with bytes the
// client has not acknowledged (a client behind in reading), a client
// write after the close makes the kernel reset the connection and discard
// them. Their ids are also reported in flight at the close
// (SeriesTruth.InFlight; Linux measures the unacknowledged bytes, other
// systems only the frames not yet handed to the kernel). Truth reports, per market and
// series, the ids generated, delivered per connection, and never
// delivered, as compact ranges. The server keeps per-connection records
// for open connections and the last Config.ClosedConns closed ones; the
// ids delivered on older connections still count as delivered.
//
// # Using it in your tests
//
// The package is public so that a consumer's own tests can run the
// exchanges in process, the way nats-server's test helpers run a server:
// New (zero Config: the default markets on a random loopback port, or
// your own Markets with rates 0 for exact control), Start, point the
// client at BinanceWSURL/BinanceRESTURL or BybitWSURL/BybitRESTURL,
// Generate events on demand (the same Seed gives the same events), inject
// faults with InjectFault, and compare what the client got with Truth,
// Generated and Book; Close at the end. See Example. `mdbridge sim` (Main)
// runs the same server as a process.
//
// # Concurrency
//
// All exported methods of Server are safe for concurrent use. Generators,
// connection readers and writers, and timers run in their own goroutines;
// Close stops them all and waits for them.
package exsim
