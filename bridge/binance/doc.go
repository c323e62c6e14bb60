// Package binance is the Binance adapter of mdbridge: it implements
// bridge.Exchange for the public market-data streams and REST endpoints of
// Binance Spot (EXCHANGES.md; exchange id "binance") and, with Config.Market
// "usdm", of Binance USD-M futures (EXCHANGES-MORE.md section 2; exchange id
// "binance-usdm": aggTrade trades, depth chained by pu, the /public and
// /market WebSocket routes; see usdm.go; its bbo, kline, ticker
// (markPrice@1s, open interest polled from /fapi/v1/openInterest) and
// liquidation (forceOrder) channels in usdm_channels.go).
//
// WebSocket: topics are carried in the combined-stream URL
// (<base>/stream?streams=btcusdt@trade/btcusdt@depth@100ms); topics that do
// not fit in Config.MaxURLBytes are subscribed with live SUBSCRIBE frames
// returned by SubscribeFrames. Decode reads combined ({"stream","data"}) and
// raw payloads, trade and depthUpdate events, serverShutdown, and control
// replies, with a case-sensitive scanner (Binance keys differ only in case:
// e/E, t/T, m/M, b/B, a/A). A trade decodes with one allocation (the frame
// copied to a string; every field is a substring of it); a depth update with
// two (plus the level slice).
//
// REST: Snapshot (GET /api/v3/depth), ServerTime (GET /api/v3/time) and
// Trades (GET /api/v3/historicalTrades, falling back to /api/v3/trades)
// pass through the resilience.RateLimitManager with Binance's request
// weights, sync it from X-MBX-USED-WEIGHT-1M, and pause it on 429/418 for
// the Retry-After the exchange sent, so no request is sent during a ban.
//
// Concurrency: an Adapter is safe for concurrent use by any number of
// connections and goroutines; Decode keeps no state between frames.
package binance
