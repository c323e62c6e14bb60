package bridge

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeJSON: DecodeJSON never panics, and whatever it accepts
// re-encodes to a body that decodes to the same event.
func FuzzDecodeJSON(f *testing.F) {
	for _, ev := range []Event{
		{Type: EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: 1, RecvTS: 2, ID: "12345", Seq: 12345, Price: "50000.10", Qty: "0.001", Side: SideBuy},
		{Type: EventBookDelta, Exchange: "bybit", Symbol: "ETHUSDT", TS: 3, RecvTS: 4, FirstID: 10, LastID: 12, Bids: []Level{{"1.5", "2"}}, Asks: []Level{{"1.6", "0"}}},
		{Type: EventBookSnapshot, Exchange: "bybit-linear", Symbol: "X", LastID: 9, Bids: []Level{{"1", "1"}, {"0.9", "3"}}},
		{Type: EventBookSnapshot, Exchange: "bybit", Symbol: "X", LastID: 9, Depth: 50, Bids: []Level{{"1", "1"}}},
		{Type: EventBookSnapshot, Exchange: "okx", Symbol: "BTC-USDT", LastID: 3, Flags: FlagIDReset, Bids: []Level{{"1", "1"}}},
	} {
		f.Add(ev.AppendJSON(nil))
	}
	f.Add([]byte(`{"v":1,"type":"trade","symbol":"\u00e9\n"}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeJSON(body)
		if err != nil {
			return
		}
		again, err := DecodeJSON(ev.AppendJSON(nil))
		if err != nil {
			t.Fatalf("re-encoded body does not decode: %v", err)
		}
		if !sameEvent(ev, again) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}

// FuzzAppendJSON: any field values (including quotes, control characters
// and invalid UTF-8) encode to valid JSON that decodes to the same values
// (invalid UTF-8 replaced by U+FFFD).
func FuzzAppendJSON(f *testing.F) {
	f.Add(uint8(1), "binance", "BTCUSDT", "123", "1.5", "2", int64(1), int64(2), "1.4", "3")
	f.Add(uint8(3), "by\"bit", "ETH\\USDT", "", "", "", int64(-1), int64(0), "\x00\x1f", "\xff")
	f.Add(uint8(2), "x", "\u2028", "\t", "\n", "\r", int64(9), int64(10), "é", "💱")
	f.Fuzz(func(t *testing.T, typ uint8, exchange, symbol, id, price, qty string, first, last int64, lp, lq string) {
		ev := Event{Type: EventType(typ%3 + 1), Exchange: exchange, Symbol: symbol, ID: id, Price: price, Qty: qty,
			Side: Side(typ % 3), FirstID: first, LastID: last, Depth: int(first % 1001), Bids: []Level{{lp, lq}}, Asks: []Level{{lq, lp}}}
		body := ev.AppendJSON(nil)
		if !json.Valid(body) {
			t.Fatalf("invalid JSON: %q", body)
		}
		got, err := DecodeJSON(body)
		if err != nil {
			t.Fatalf("DecodeJSON(%q): %v", body, err)
		}
		want := ev
		for _, p := range []*string{&want.Exchange, &want.Symbol, &want.ID, &want.Price, &want.Qty, &want.Bids[0][0], &want.Bids[0][1], &want.Asks[0][0], &want.Asks[0][1]} {
			*p = validUTF8(*p)
		}
		if want.Type != EventTrade {
			want.ID, want.Price, want.Qty, want.Side = "", "", "", SideUnknown
		} else {
			want.FirstID, want.LastID, want.Depth, want.Bids, want.Asks = 0, 0, 0, nil, nil
		}
		if want.Type == EventBookSnapshot {
			want.FirstID = 0
		}
		got.Seq = 0
		if !sameEvent(got, want) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
		}
	})
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]rune, 0, len(s))
	for _, r := range s {
		b = append(b, r) // invalid bytes range as U+FFFD
	}
	return string(b)
}

func sameEvent(a, b Event) bool {
	if a.Type != b.Type || a.Exchange != b.Exchange || a.Symbol != b.Symbol || a.TS != b.TS || a.RecvTS != b.RecvTS ||
		a.ID != b.ID || a.Seq != b.Seq || a.Price != b.Price || a.Qty != b.Qty || a.Side != b.Side ||
		a.FirstID != b.FirstID || a.LastID != b.LastID || a.Depth != b.Depth ||
		(a.Type == EventBookSnapshot && a.Flags&FlagIDReset != b.Flags&FlagIDReset) || len(a.Bids) != len(b.Bids) || len(a.Asks) != len(b.Asks) {
		return false
	}
	for i := range a.Bids {
		if a.Bids[i] != b.Bids[i] {
			return false
		}
	}
	for i := range a.Asks {
		if a.Asks[i] != b.Asks[i] {
			return false
		}
	}
	return true
}
