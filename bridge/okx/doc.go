// Package okx is the OKX v5 public market-data adapter (bridge.Exchange)
// for two markets: SPOT (exchange id "okx", e.g. BTC-USDT) and USDT-margined
// perpetual swaps (exchange id "okx-swap", e.g. BTC-USDT-SWAP). Symbols are
// OKX instrument ids verbatim (upper case; '-' is an identifier character).
//
// Channels:
//
//   - Trades. A connection that carries trades only dials
//     <WSURL>/ws/v5/business and subscribes `trades-all`: one fill per
//     message with consecutive per-instrument trade ids (Event.Seq = tradeId),
//     so the runner detects every gap and backfills it by id from REST
//     history-trades, whose rows are the same fills. A connection that also
//     carries books dials /ws/v5/public, where only the aggregated `trades`
//     channel exists (one message per taker order and price; tradeId is the
//     last of `count` fills): those events carry the aggregate (ID = last
//     tradeId, Qty = the aggregate size) with Seq 0, deduplicated by id and
//     not backfilled, because REST returns single fills that would not match
//     the aggregates. Subscribe trades in their own stream for exact trades.
//   - Books: `books` (400 levels, 100 ms), bridge.BookStreamChained:
//     deltas chain by prevSeqId == the previous seqId (Event.PrevID;
//     FirstID = prevSeqId+1, LastID = seqId).
//   - bbo, kline.<iv>, and on okx-swap ticker and liquidation: see
//     channels.go. Candles live on /ws/v5/business only, so the Adapter is
//     a bridge.Router (route "business" for klines, "public" for the rest)
//     and a bridge.KlineFetcher (REST candles / history-candles).
//
// An Adapter is safe for concurrent use by several connections: the
// symbol table and the channel registry (liquidation filter, index to
// swaps) are read under their own synchronization.
// The heartbeat is OKX's text "ping"/"pong" (every 20 s, under the 30 s
// idle cut); the 64008 notice (a maintenance disconnect in 60 s) is a
// bridge.FrameShutdown, so the runner rotates the connection make-before-
// break.
package okx
