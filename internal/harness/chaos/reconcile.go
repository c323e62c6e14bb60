package chaos

import (
	"fmt"
	"slices"
	"strings"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// StreamMsg is one message read back from the MD stream.
type StreamMsg struct {
	Seq     uint64
	Subject string
	MsgID   string // Nats-Msg-Id header
	Event   bridge.Event
	// Depth is the body's "depth" (the update-id series of a Bybit book
	// event; 0 when absent), read by the stream reader itself.
	Depth int
}

// MarketTruth is the simulator's ground truth for one market, taken once
// generation stopped.
type MarketTruth struct {
	Venue  exsim.Venue
	Symbol string
	// Trades is the trade series (Binance trade ids; Bybit trade ordinals).
	Trades exsim.SeriesTruth
	// Book is the book update series the bridge subscribes (Binance depth,
	// Bybit orderbook.<depth>).
	Book exsim.SeriesTruth
	// Bids and Asks are the simulator's final book (best first).
	Bids, Asks [][2]string
	// Depth is the number of levels per side compared (0 = all).
	Depth int
	// BookID is the simulator's final update id of the compared book.
	BookID int64
	// NoTrades and NoBook: the replicas do not subscribe the market's
	// trades (its book); that side is not reconciled.
	NoTrades, NoBook bool
	// Pushes: Book counts pushes (OKX books: ordinals) while the stream's
	// ids are another sequence (OKX seqIds); the updates in the stream are
	// counted as distinct deltas.
	Pushes bool
}

// ConnFate says what happened to one simulator connection's deliveries.
type ConnFate struct {
	Gen string // the replica generation that opened it ("" unknown)
	// Killed: the generation was killed while the connection was open, or
	// its publisher abandoned unacknowledged events when it was killed, so
	// what was delivered on it may have died with the process.
	Killed bool
}

// ReconcileInput is everything Reconcile compares.
type ReconcileInput struct {
	Markets []MarketTruth
	// Ordinal maps a Bybit wire trade id to the simulator's ordinal.
	Ordinal func(v exsim.Venue, symbol, id string) (int64, bool)
	// Conns maps simulator connection ids to their fate.
	Conns map[uint64]ConnFate
	// SnapshotOrigin describes who produced a book snapshot (optional).
	SnapshotOrigin func(exchange, symbol string, lastID int64) string
	// Counted returns the trades the bridge declared lost for a market:
	// the Missing and Dropped counters of every replica generation
	// (optional; nil counts nothing).
	Counted func(exchange, symbol string) uint64
}

// TradeResult is the trade accounting of one market, compared per
// connection with what the simulator wrote to each bridge connection.
type TradeResult struct {
	Generated int64 `json:"generated"`
	// Written (also Delivered) is the number of trades the simulator wrote
	// to at least one bridge connection; WrittenInStream how many of them
	// the stream holds.
	Written         int64 `json:"written"`
	Delivered       int64 `json:"delivered"`
	WrittenInStream int64 `json:"written_in_stream"`
	InStream        int64 `json:"in_stream"` // distinct trades stored in the stream
	Duplicates      int64 `json:"duplicates"`
	Missing         int64 `json:"missing"` // generated and not in the stream
	// Missing, classified by the connections the simulator wrote them to:
	NeverDelivered int64 `json:"never_delivered"` // written to no bridge connection (every replica was disconnected)
	KilledReplica  int64 `json:"killed_replica"`  // written only to replica generations that were then killed
	// InTransit were written to live replicas' connections only in their
	// last bytes when the simulator closed them: still unacknowledged in
	// the simulator's kernel send buffer, which the reset a client write
	// after the close provokes discards (exsim SeriesTruth.InFlight). The
	// bridge may never have received them; a Bybit reconnect backfills
	// the recent trades, but only once the stream has emitted a trade.
	InTransit int64 `json:"in_transit"`
	// LostByBridge were written to a live replica's connection and are not
	// in the stream: LostCounted of them fall in loss episodes (runs of
	// consecutive missing trades) the bridge's missing and dropped
	// counters account for (Bybit ids are not consecutive, so the bridge
	// counts at least 1 per episode, not per trade), LostUncounted in
	// episodes beyond those counters: silent losses, a bug.
	LostByBridge  int64 `json:"lost_by_bridge"`
	LostCounted   int64 `json:"lost_counted"`
	LostUncounted int64 `json:"lost_uncounted"`
	// LostEpisodes is the number of runs of missing trades holding a lost
	// one; BridgeCounted the bridge's missing + dropped counters for the
	// market (all replicas and generations).
	LostEpisodes  int64  `json:"lost_episodes"`
	BridgeCounted uint64 `json:"bridge_counted"`
	Unknown       int64  `json:"unknown"`      // ids the simulator never generated: corruption
	OutOfOrder    int64  `json:"out_of_order"` // stored after a trade with a higher id (informational)
	// Examples names a few missing or duplicated ids with their class.
	Examples []string `json:"examples,omitempty"`
	// NotSubscribed: the replicas do not subscribe this market's trades.
	NotSubscribed bool `json:"not_subscribed,omitempty"`
}

// BookResult is the order book accounting of one market. The verdict is
// the documented consumer rule's (BookReplay); bridge.BookBuilder, the
// library implementation of the same rule, is run as a cross-check, and the
// naive reset-only rule as a diagnostic.
type BookResult struct {
	UpdatesGenerated int64 `json:"updates_generated"`
	UpdatesDelivered int64 `json:"updates_delivered"`
	UpdatesInStream  int64 `json:"updates_in_stream"` // update ids covered by stored deltas
	Deltas           int   `json:"deltas"`
	Snapshots        int   `json:"snapshots"`
	DeltaDuplicates  int   `json:"delta_duplicates"`    // two deltas with one last_id
	SnapDuplicates   int   `json:"snapshot_duplicates"` // two snapshots with one last_id
	ConsumerGaps     int   `json:"consumer_gaps"`       // deltas beyond book id + 1 that no later delta filled (the consumer waits for a snapshot)
	HealedGaps       int   `json:"healed_gaps"`         // gaps a delta stored later filled (another replica's copy)
	StaleSnapshots   int   `json:"stale_snapshots"`     // snapshots older than the live book they reset
	// ForeignSnapshots are snapshots of another update-id series than the
	// deltas (their "depth" differs, or is absent while the deltas carry
	// one): the consumer skips them, and the bridge must never publish one.
	ForeignSnapshots int      `json:"foreign_snapshots"`
	ForeignLog       []string `json:"foreign_log,omitempty"`
	// Series is the "depth" the deltas carried (0: none).
	Series   int             `json:"series,omitempty"`
	Replayed int             `json:"replayed"` // kept deltas applied after a snapshot
	GapLog   []string        `json:"gap_log,omitempty"`
	StaleLog []StaleSnapshot `json:"stale_log,omitempty"`
	FinalID  int64           `json:"final_id"`
	SimID    int64           `json:"sim_id"`
	Diverged bool            `json:"diverged"`
	Diff     string          `json:"diff,omitempty"`
	// LibraryGaps and LibraryDiff are bridge.BookBuilder's result.
	LibraryGaps     int    `json:"library_gaps"`
	LibraryDiverged bool   `json:"library_diverged"`
	LibraryDiff     string `json:"library_diff,omitempty"`
	// NaiveGaps and NaiveDiverged are the reset-only consumer's result.
	NaiveGaps     int  `json:"naive_gaps"`
	NaiveDiverged bool `json:"naive_diverged"`
	// NotSubscribed: the replicas do not subscribe this market's book.
	NotSubscribed bool `json:"not_subscribed,omitempty"`
}

// MarketResult is the reconciliation of one market.
type MarketResult struct {
	Exchange string      `json:"exchange"`
	Symbol   string      `json:"symbol"`
	Trades   TradeResult `json:"trades"`
	Book     BookResult  `json:"book"`
}

// StreamResult is the stream-wide accounting.
type StreamResult struct {
	Messages      int      `json:"messages"`
	MsgIDDups     int      `json:"msg_id_duplicates"`
	DecodeErrors  int      `json:"decode_errors"`
	ForeignEvents int      `json:"foreign_events"` // events of markets not in the soak
	Examples      []string `json:"examples,omitempty"`
}

// reconciler consumes the stream message by message.
type reconciler struct {
	msgIDs  map[string]uint64
	markets map[string]*marketAcc
	stream  StreamResult
	ordinal func(v exsim.Venue, symbol, id string) (int64, bool)
}

type marketAcc struct {
	venue      exsim.Venue
	symbol     string
	trades     map[int64]int
	lastTrade  int64
	outOfOrder int64
	unknown    int64
	unknownEx  []string
	deltaIDs   map[int64]int
	snapIDs    map[int64]int
	deltaCover []exsim.Range
	doc        BookReplay
	naive      BookReplay
	lib        *bridge.BookBuilder
	libGaps    int
}

func newReconciler(markets []MarketTruth, ordinal func(v exsim.Venue, symbol, id string) (int64, bool)) *reconciler {
	r := &reconciler{msgIDs: map[string]uint64{}, markets: map[string]*marketAcc{}, ordinal: ordinal}
	for _, m := range markets {
		r.markets[string(m.Venue)+"."+m.Symbol] = &marketAcc{
			venue: m.Venue, symbol: m.Symbol, trades: map[int64]int{},
			deltaIDs: map[int64]int{}, snapIDs: map[int64]int{}, naive: BookReplay{ResetOnly: true},
			lib: bridge.NewBookBuilder(0),
		}
	}
	return r
}

func (r *reconciler) example(s string) {
	if len(r.stream.Examples) < 10 {
		r.stream.Examples = append(r.stream.Examples, s)
	}
}

// add accounts one stored message.
func (r *reconciler) add(m *StreamMsg) {
	r.stream.Messages++
	if first, dup := r.msgIDs[m.MsgID]; dup {
		r.stream.MsgIDDups++
		r.example(fmt.Sprintf("msg id %s stored twice (seq %d and %d)", m.MsgID, first, m.Seq))
	} else {
		r.msgIDs[m.MsgID] = m.Seq
	}
	ev := &m.Event
	if want := ev.MsgID(); want != m.MsgID {
		r.stream.DecodeErrors++
		r.example(fmt.Sprintf("seq %d: header msg id %q, body says %q", m.Seq, m.MsgID, want))
	}
	acc := r.markets[ev.Exchange+"."+ev.Symbol]
	if acc == nil {
		r.stream.ForeignEvents++
		r.example(fmt.Sprintf("seq %d: event of unknown market %s %s", m.Seq, ev.Exchange, ev.Symbol))
		return
	}
	switch ev.Type {
	case bridge.EventTrade:
		var id int64
		ok := false
		if exactTrades(acc.venue) { // the id is the trade id
			id, ok = parseID(ev.ID)
			// Binance ids are also the stored seq field (bridge.DecodeJSON
			// derives it for Binance only; an OKX stored trade has none).
			ok = ok && (id == ev.Seq || isOKX(acc.venue))
		} else if r.ordinal != nil {
			id, ok = r.ordinal(acc.venue, acc.symbol, ev.ID)
		}
		if !ok {
			acc.unknown++
			if len(acc.unknownEx) < 3 {
				acc.unknownEx = append(acc.unknownEx, fmt.Sprintf("seq %d: trade id %q (seq field %d) not generated", m.Seq, ev.ID, ev.Seq))
			}
			return
		}
		acc.trades[id]++
		if id < acc.lastTrade {
			acc.outOfOrder++
		}
		acc.lastTrade = max(acc.lastTrade, id)
	case bridge.EventBookDelta:
		acc.deltaIDs[ev.LastID]++
		first := ev.FirstID
		if ev.PrevID > 0 { // pu chain: the delta covers the ids after pu (the truth's ranges)
			first = ev.PrevID + 1
		}
		acc.deltaCover = append(acc.deltaCover, exsim.Range{First: first, Last: ev.LastID})
		acc.replay(m.Seq, ev, m.Depth)
	case bridge.EventBookSnapshot:
		acc.snapIDs[ev.LastID]++
		acc.replay(m.Seq, ev, m.Depth)
	default:
		r.stream.DecodeErrors++
		r.example(fmt.Sprintf("seq %d: unknown event type", m.Seq))
	}
}

// replay feeds a book event of series depth to the three consumers.
// bridge.BookBuilder reads the series from the Event (bridge.DecodeJSON
// fills Event.Depth once the bridge has it); the replays take it from the
// body as the stream reader read it.
func (acc *marketAcc) replay(seq uint64, ev *bridge.Event, depth int) {
	acc.doc.ApplyDepth(seq, ev, depth)
	acc.naive.ApplyDepth(seq, ev, depth)
	if acc.lib.Apply(*ev) == bridge.BookGap {
		acc.libGaps++
	}
}

// finish compares the accumulated stream with the ground truth.
func (r *reconciler) finish(in ReconcileInput) ([]MarketResult, StreamResult) {
	var out []MarketResult
	for _, mt := range in.Markets {
		acc := r.markets[string(mt.Venue)+"."+mt.Symbol]
		res := MarketResult{Exchange: string(mt.Venue), Symbol: mt.Symbol}
		var counted uint64
		if in.Counted != nil {
			counted = in.Counted(string(mt.Venue), mt.Symbol)
		}
		res.Trades = acc.tradeResult(mt, in.Conns, counted)
		res.Book = acc.bookResult(mt)
		for i := range res.Book.StaleLog {
			if in.SnapshotOrigin != nil {
				res.Book.StaleLog[i].Origin = in.SnapshotOrigin(string(mt.Venue), mt.Symbol, res.Book.StaleLog[i].LastID)
			}
		}
		out = append(out, res)
	}
	return out, r.stream
}

func (acc *marketAcc) tradeResult(mt MarketTruth, conns map[uint64]ConnFate, counted uint64) TradeResult {
	if mt.NoTrades {
		// Not subscribed: a stored trade is still corruption.
		return TradeResult{NotSubscribed: true, InStream: int64(len(acc.trades)) + acc.unknown, Unknown: int64(len(acc.trades)) + acc.unknown}
	}
	all := slices.Clone(mt.Trades.Delivered)
	for _, rs := range mt.Trades.PerConn {
		all = append(all, rs...)
	}
	writtenRs := mergeRanges(all)
	written := rangesLen(writtenRs)
	tr := TradeResult{Generated: mt.Trades.Generated.Len(), Written: written, Delivered: written,
		Unknown: acc.unknown, OutOfOrder: acc.outOfOrder, BridgeCounted: counted}
	tr.Examples = append(tr.Examples, acc.unknownEx...)
	ex := func(format string, args ...any) {
		if len(tr.Examples) < 8 {
			tr.Examples = append(tr.Examples, fmt.Sprintf(format, args...))
		}
	}
	ids := make([]int64, 0, len(acc.trades))
	for id, n := range acc.trades {
		ids = append(ids, id)
		if n > 1 {
			tr.Duplicates += int64(n - 1)
			ex("trade %d stored %d times", id, n)
		}
		if !mt.Trades.Generated.Contains(id) {
			tr.Unknown++
			ex("trade %d outside the generated range %d-%d", id, mt.Trades.Generated.First, mt.Trades.Generated.Last)
		}
		if rangesContain(writtenRs, id) {
			tr.WrittenInStream++
		}
	}
	slices.Sort(ids)
	tr.InStream = int64(len(ids))
	// Missing: generated ids not stored, walked as ranges; each range is
	// one loss episode.
	classify := func(id int64) string {
		var any, allKilled, reached = false, true, false
		for conn, rs := range mt.Trades.PerConn {
			if !rangesContain(rs, id) {
				continue
			}
			any = true
			if !conns[conn].Killed {
				allKilled = false
				// A live replica's connection received it unless it was
				// still in flight when the simulator closed it.
				reached = reached || !rangesContain(mt.Trades.InFlight[conn], id)
			}
		}
		switch {
		case !any:
			return "never"
		case allKilled:
			return "killed"
		case !reached:
			return "transit"
		default:
			return "lost"
		}
	}
	budget := counted
	next := mt.Trades.Generated.First
	addMissing := func(lo, hi int64) {
		var lost []int64
		for id := lo; id <= hi; id++ {
			tr.Missing++
			switch classify(id) {
			case "never":
				tr.NeverDelivered++
				if exactTrades(mt.Venue) {
					ex("trade %d missing, never delivered on any connection", id)
				}
			case "killed":
				tr.KilledReplica++
				if exactTrades(mt.Venue) {
					ex("trade %d missing, delivered on %s", id, deliveredOn(mt.Trades.PerConn, id, conns))
				}
			case "transit":
				tr.InTransit++
				ex("trade %d missing, in flight when the simulator closed %s", id, deliveredOn(mt.Trades.PerConn, id, conns))
			default:
				tr.LostByBridge++
				lost = append(lost, id)
			}
		}
		if len(lost) == 0 {
			return
		}
		tr.LostEpisodes++
		n := int64(len(lost))
		if budget > 0 {
			budget--
			tr.LostCounted += n
			ex("trades %d-%d missing (%d of them written to a live replica, counted by the bridge), e.g. %d on %s",
				lo, hi, n, lost[0], deliveredOn(mt.Trades.PerConn, lost[0], conns))
			return
		}
		tr.LostUncounted += n
		ex("trades %d-%d missing and not counted by the bridge although %d of them were written to a live replica, e.g. %d on %s",
			lo, hi, n, lost[0], deliveredOn(mt.Trades.PerConn, lost[0], conns))
	}
	if !mt.Trades.Generated.Empty() {
		for _, id := range ids {
			if id < next {
				continue
			}
			if id > next {
				addMissing(next, min(id-1, mt.Trades.Generated.Last))
			}
			next = id + 1
		}
		if next <= mt.Trades.Generated.Last {
			addMissing(next, mt.Trades.Generated.Last)
		}
	}
	return tr
}

// deliveredOn names the connections (and their replica generations) that
// received id.
func deliveredOn(perConn map[uint64][]exsim.Range, id int64, conns map[uint64]ConnFate) string {
	var ids []uint64
	for c, rs := range perConn {
		if rangesContain(rs, id) {
			ids = append(ids, c)
		}
	}
	slices.Sort(ids)
	var parts []string
	for _, c := range ids {
		f := conns[c]
		parts = append(parts, fmt.Sprintf("conn %d (%s%s)", c, f.Gen, map[bool]string{true: ", killed"}[f.Killed]))
	}
	if len(parts) == 0 {
		return "no connection"
	}
	return strings.Join(parts, ", ")
}

func (acc *marketAcc) bookResult(mt MarketTruth) BookResult {
	if mt.NoBook {
		// Not subscribed: a stored book event is of a market not in the soak.
		br := BookResult{NotSubscribed: true, Deltas: acc.doc.Deltas, Snapshots: acc.doc.Snapshots}
		if n := len(acc.deltaIDs) + len(acc.snapIDs); n > 0 {
			br.Diverged, br.Diff = true, fmt.Sprintf("%d book events stored for a market whose book is not subscribed", n)
		}
		return br
	}
	br := BookResult{
		UpdatesGenerated: mt.Book.Generated.Len(), UpdatesDelivered: rangesLen(mt.Book.Delivered),
		UpdatesInStream: rangesLen(mergeRanges(acc.deltaCover)),
		Deltas:          acc.doc.Deltas, Snapshots: acc.doc.Snapshots,
		ConsumerGaps: acc.doc.Gaps - acc.doc.Healed, HealedGaps: acc.doc.Healed, StaleSnapshots: acc.doc.StaleSnapshots, Replayed: acc.doc.Replayed,
		GapLog: acc.doc.GapLog, StaleLog: slices.Clone(acc.doc.StaleLog),
		ForeignSnapshots: acc.doc.Foreign, ForeignLog: acc.doc.ForeignLog, Series: acc.doc.DeltaSeries,
		FinalID: acc.doc.LastID, SimID: mt.BookID, LibraryGaps: acc.libGaps, NaiveGaps: acc.naive.Gaps,
	}
	for _, n := range acc.deltaIDs {
		br.DeltaDuplicates += n - 1
	}
	if mt.Pushes {
		br.UpdatesInStream = int64(len(acc.deltaIDs))
	}
	for _, n := range acc.snapIDs {
		br.SnapDuplicates += n - 1
	}
	br.Diff = acc.doc.Diff(mt.Bids, mt.Asks, mt.Depth, mt.BookID)
	br.Diverged = br.Diff != ""
	br.LibraryDiff = libraryDiff(acc.lib, mt)
	br.LibraryDiverged = br.LibraryDiff != ""
	br.NaiveDiverged = acc.naive.Diff(mt.Bids, mt.Asks, mt.Depth, mt.BookID) != ""
	return br
}

// libraryDiff compares bridge.BookBuilder's book with the simulator's.
func libraryDiff(b *bridge.BookBuilder, mt MarketTruth) string {
	if !b.Valid() {
		return fmt.Sprintf("bridge.BookBuilder holds no valid book (at %d)", b.LastID())
	}
	if d := diffBook(b.LastID(), b.Bids(), b.Asks(), mt.Bids, mt.Asks, mt.Depth, mt.BookID); d != "" {
		return "bridge.BookBuilder: " + d
	}
	return ""
}

// Reconcile compares stored messages (in stream order) with the ground
// truth. It is a pure function: the soak feeds it the stream it read back.
func Reconcile(msgs []StreamMsg, in ReconcileInput) ([]MarketResult, StreamResult) {
	r := newReconciler(in.Markets, in.Ordinal)
	for i := range msgs {
		r.add(&msgs[i])
	}
	return r.finish(in)
}

func rangesLen(rs []exsim.Range) int64 {
	var n int64
	for _, r := range rs {
		n += max(r.Len(), 0)
	}
	return n
}

func rangesContain(rs []exsim.Range, id int64) bool {
	i, _ := slices.BinarySearchFunc(rs, id, func(r exsim.Range, id int64) int {
		switch {
		case r.Last < id:
			return -1
		case r.First > id:
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i].Contains(id)
}

// mergeRanges returns the union of rs as sorted disjoint ranges.
func mergeRanges(rs []exsim.Range) []exsim.Range {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b exsim.Range) int {
		switch {
		case a.First < b.First:
			return -1
		case a.First > b.First:
			return 1
		}
		return 0
	})
	var out []exsim.Range
	for _, r := range rs {
		if r.Empty() {
			continue
		}
		if n := len(out); n > 0 && r.First <= out[n-1].Last+1 {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}
