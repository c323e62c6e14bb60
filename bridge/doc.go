// Package bridge turns exchange WebSocket feeds into a loss-free,
// duplicate-free, ordered sequence of normalized events (Event): trades,
// order book snapshots and deltas, and the channel events best bid/offer,
// klines (closed bars exactly once, filled from REST across outages),
// derivatives tickers (venue deltas merged into full state) and
// liquidations (channels.go, chansync.go).
//
// It holds the wire contract (Event, AppendJSON, AppendMsgID, DecodeJSON),
// the adapter contract every venue implements (Exchange; bridge/binance,
// bridge/bybit), the consumer-side interfaces the publisher satisfies
// (Publisher, StateSink, SnapshotRequester), and the connection runner
// behind the library API, Stream:
//
//	ex, err := binance.New(binance.Config{}, logger) // the real endpoints; URLs are configuration
//	...
//	s, err := bridge.NewStream(bridge.StreamConfig{
//		Exchange: ex,
//		Symbols:  []string{"BTCUSDT"},
//		Channels: bridge.ChannelTrade | bridge.ChannelBook,
//	}, bridge.HandlerFunc(func(ctx context.Context, evs []bridge.Event) error {
//		...
//		return nil
//	}), logger)
//	err = s.Run(ctx)
//
// is the Go form of the seed's
// qd.stream(["BTCUSDT"], source="binance").resolution("tick").on_data(h).get(start=True).
//
// # What the runner guarantees
//
//   - Connections: symbols are split over as few connections as the venue
//     allows (all topics of a symbol on one connection), connects are
//     staggered (token bucket + spacing), client messages are paced under the
//     venue's per-connection limit, server pings are answered from the read
//     loop, client pings are sent where the venue wants them, silence past
//     the heartbeat timeout replaces the connection, lost connections are
//     reconnected with backoff and resubscribed; after
//     MaxReconnectAttempts the state is FAILED and retries continue at the
//     maximum delay, so a feed never stops while the process runs.
//   - Rotation: before the venue's connection age limit and on a server
//     shutdown announcement, a replacement connection is opened and
//     subscribed; the old one keeps emitting until the replacement has
//     delivered data overlapping it; then the replacement takes over and the
//     overlap is dropped as duplicates. Nothing is missed.
//   - Trades: per-symbol deduplication by exchange id; on venues with
//     consecutive ids (Binance) a gap is backfilled over REST and emitted in
//     order before live trades continue; what cannot be recovered is counted
//     (Counters.Missing) and logged. With a TradeResumer (StreamConfig.TradeResumer)
//     a starting stream continues each symbol after the destination's last
//     stored trade, so trades published while no replica ran are
//     backfilled too (up to BackfillMax). Venues without consecutive ids
//     get a best-effort recent-trades backfill after a reconnect
//     (RecentTrader); a connection that opens while it runs joins it, and
//     it fetches again once that connection is subscribed.
//   - Order books: a book.snapshot always precedes the deltas that follow it
//     and no delta is emitted across a gap: BookRESTSnapshot venues follow
//     Binance's buffer/snapshot/U-u procedure (snapshots through the
//     SnapshotRequester when configured, coalesced per symbol and
//     rate-limited); BookStreamSnapshot venues reset on every snapshot and
//     resubscribe on a jump (BookGapPolicy); BookStreamChained venues (OKX)
//     do the same with deltas chained by Event.PrevID, and bootstrap from
//     a REST snapshot when the stream sends none (bookchain_prev.go).
//   - State: every transition of a connection and a periodic refresh are
//     reported per symbol to the StateSink; at the end every symbol is
//     reported DISCONNECTED.
//
// # Concurrency
//
// A Stream is safe for concurrent use; Run may be called once. Each
// connection slot (shard) processes frames and repair results under its own
// lock and calls the Publisher under that lock, so the events of one symbol
// reach the publisher in order and never concurrently; different shards call
// it concurrently. The publisher must not retain the events slice. Stats,
// States, Snapshot and ClockOffset may be called at any time.
package bridge
