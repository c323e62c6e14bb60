// Package bybit is the Bybit v5 public market-data adapter of mdbridge (spot
// and linear markets): it implements bridge.Exchange per EXCHANGES.md.
//
// WebSocket: one URL per market (<base>/v5/public/spot|linear); topics are
// subscribed with {"req_id","op":"subscribe","args":[...]} frames of at most
// 10 args. Decode reads publicTrade (one frame, many trades), orderbook
// snapshots and deltas, subscribe/unsubscribe replies and pongs with a
// case-sensitive scanner that takes every field as a substring of the frame
// (one allocation per frame for trades).
//
// Field mapping for order books: Bybit's update id u is both FirstID and
// LastID of a delta and LastID of a snapshot; Bybit's cross sequence seq is
// put in Event.Seq (Event.Seq is otherwise a trade field and is not part of
// the book wire format), so the runner can drop regressions. Trades have
// Seq 0: Bybit trade ids are not consecutive.
//
// REST: Snapshot (GET /v5/market/orderbook), ServerTime (GET
// /v5/market/time, nanoseconds) and RecentTrades (GET
// /v5/market/recent-trade, best-effort backfill matched by id) pass through
// the resilience.RateLimitManager (weight 1 each); HTTP 403 is Bybit's IP
// ban and pauses the limiter (10 minutes unless told otherwise). Trades
// returns bridge.ErrNotSupported.
//
// Concurrency: an Adapter is safe for concurrent use by any number of
// connections and goroutines; Decode keeps no state between frames.
package bybit
