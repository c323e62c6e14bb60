package bridge

// Two rules chain a delta to the book before it:
//
//   - the update-id range rule (Binance Spot, Bybit): a delta with first id
//     U continues a book at id L when U <= L+1 (steady state U == L+1);
//   - the previous-id rule (Binance USD-M futures, whose update ids are not
//     contiguous): a delta carries pu, the final id of the previous event
//     on the stream (Event.PrevID, wire field "prev_id"), and continues a
//     book at id L when pu <= L (steady state pu == L). A pu above L means
//     an event between them was missed.
//
// Both rules also need the delta's last id above L (else the book already
// covers it). A delta chains by pu when its PrevID is set (> 0); the bridge's
// book sync, its BookBuilder and the chaos harness's replay all use
// continues, so one venue's deltas follow one rule.

// continues reports whether delta d continues a book at update id id (and
// is not already covered by it, d.LastID > id, which callers check first).
func continues(d *Event, id int64) bool {
	if d.PrevID > 0 {
		return d.PrevID <= id
	}
	return d.FirstID <= id+1
}

// Continues reports whether the book delta d may be applied to a book at
// update id id without missing an update: by the previous-id rule when d
// carries PrevID, by the update-id range rule otherwise. Consumers that
// maintain their own books use it (BookBuilder does).
func Continues(d *Event, id int64) bool { return continues(d, id) }
