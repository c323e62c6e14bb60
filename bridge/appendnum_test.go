package bridge

import (
	"bytes"
	"math"
	"strconv"
	"testing"
	"unicode/utf8"
)

// The encoder before the word-at-a-time formatters (0395f39): the bodies
// and msg IDs of the current one must not differ from it by a byte.

func referenceJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func referenceLevels(dst []byte, levels []Level) []byte {
	dst = append(dst, '[')
	for i, l := range levels {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = referenceJSONString(dst, l[0])
		dst = append(dst, ',')
		dst = referenceJSONString(dst, l[1])
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// referenceAppendJSON is AppendJSON as of 0395f39 (channel events, whose
// encoder is unchanged but for appendJSONString, go to appendChannelJSON).
func referenceAppendJSON(e *Event, dst []byte) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, SchemaVersion, 10)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, e.Type.String()...)
	dst = append(dst, `","exchange":`...)
	dst = referenceJSONString(dst, e.Exchange)
	dst = append(dst, `,"symbol":`...)
	dst = referenceJSONString(dst, e.Symbol)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, e.TS, 10)
	dst = append(dst, `,"recv_ts":`...)
	dst = strconv.AppendInt(dst, e.RecvTS, 10)
	switch e.Type {
	case EventTrade:
		dst = append(dst, `,"id":`...)
		dst = referenceJSONString(dst, e.ID)
		dst = append(dst, `,"price":`...)
		dst = referenceJSONString(dst, e.Price)
		dst = append(dst, `,"qty":`...)
		dst = referenceJSONString(dst, e.Qty)
		dst = append(dst, `,"side":"`...)
		dst = append(dst, e.Side.String()...)
		dst = append(dst, '"')
	case EventBookDelta, EventBookSnapshot:
		if e.Type == EventBookDelta {
			dst = append(dst, `,"first_id":`...)
			dst = strconv.AppendInt(dst, e.FirstID, 10)
			if e.PrevID > 0 && e.FirstID != e.PrevID+1 {
				dst = append(dst, `,"prev_id":`...)
				dst = strconv.AppendInt(dst, e.PrevID, 10)
			}
		}
		dst = append(dst, `,"last_id":`...)
		dst = strconv.AppendInt(dst, e.LastID, 10)
		if e.Depth != 0 {
			dst = append(dst, `,"depth":`...)
			dst = strconv.AppendInt(dst, int64(e.Depth), 10)
		}
		if e.Type == EventBookSnapshot && e.Flags&FlagIDReset != 0 {
			dst = append(dst, `,"reset":true`...)
		}
		dst = append(dst, `,"bids":`...)
		dst = referenceLevels(dst, e.Bids)
		dst = append(dst, `,"asks":`...)
		dst = referenceLevels(dst, e.Asks)
	default:
		dst = e.appendChannelJSON(dst)
	}
	return append(dst, '}')
}

// referenceMsgID is AppendMsgID for a trade as of 0395f39.
func referenceMsgID(e *Event) string {
	return e.Exchange + ":" + e.Symbol + ":" + e.Type.String() + ":" + e.ID
}

var referenceTrades = []Event{
	{Type: EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: 1672515782134000000, RecvTS: 1672515782140000000,
		ID: "100000000000", Seq: 100000000000, Price: "16850.10000000", Qty: "0.01200000", Side: SideSell},
	{Type: EventTrade, Exchange: "binance-usdm", Symbol: "ETHUSDT", TS: 1672515782134000000, RecvTS: 1733402102123456789,
		ID: "5", Seq: 5, Price: "1", Qty: "0.001", Side: SideBuy},
	{Type: EventTrade, Exchange: "bybit", Symbol: "BTCUSDT", TS: 1700000000001000000, RecvTS: 1700000000001999999,
		ID: "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", Price: "37000.5", Qty: "0.123456", Side: SideBuy},
	{Type: EventTrade, Exchange: "okx", Symbol: "BTC-USDT-SWAP", TS: 1, RecvTS: 99999999,
		ID: "123456789012345678", Price: "42000.1", Qty: "12", Side: SideSell},
	{Type: EventTrade, Exchange: "x", Symbol: "Y", TS: 100000000, RecvTS: 9999999999999999, ID: "", Price: "", Qty: ""},
	{Type: EventTrade, Exchange: "x", Symbol: "Y", TS: 10000000000000000, RecvTS: math.MaxInt64, ID: "é\"\\\n\x00\xff12345678", Price: "12345678\x1f", Qty: "1234567\"", Side: SideBuy},
	{Type: EventTrade, Exchange: "x", Symbol: "Y", TS: -1, RecvTS: math.MinInt64, ID: "1234567890123456\u2028", Price: "0.1", Qty: "\x7f\x80abcdefgh"},
	{Type: EventBookDelta, Exchange: "binance-usdm", Symbol: "BTCUSDT", TS: 1672515782134000000, RecvTS: 1672515782140000001,
		FirstID: 1000000000001, PrevID: 999999999990, LastID: 1000000000005, Bids: []Level{{"16850.10", "1.5"}}, Asks: []Level{{"16850.20", "0"}}},
	{Type: EventBookSnapshot, Exchange: "okx", Symbol: "BTC-USDT", LastID: 3, Flags: FlagIDReset, Depth: 400, Bids: []Level{{"1", "1"}}},
}

// TestAppendJSONReference: trade and book bodies and trade msg IDs equal
// the reference encoder's output byte for byte.
func TestAppendJSONReference(t *testing.T) {
	for i := range referenceTrades {
		e := &referenceTrades[i]
		got, want := e.AppendJSON([]byte("prefix")), referenceAppendJSON(e, []byte("prefix"))
		if !bytes.Equal(got, want) {
			t.Errorf("event %d: body\n got %s\nwant %s", i, got, want)
		}
		if e.Type == EventTrade {
			if got, want := string(e.AppendMsgID(nil)), referenceMsgID(e); got != want {
				t.Errorf("event %d: msg ID %q, want %q", i, got, want)
			}
		}
	}
}

// FuzzAppendJSONReference: any trade or book event encodes as the
// reference encoder does.
func FuzzAppendJSONReference(f *testing.F) {
	for _, e := range referenceTrades {
		var lp, lq string
		if len(e.Bids) > 0 {
			lp, lq = e.Bids[0][0], e.Bids[0][1]
		}
		f.Add(uint8(e.Type), e.Exchange, e.Symbol, e.ID, e.Price, e.Qty, e.TS, e.RecvTS, e.FirstID, e.LastID, lp, lq)
	}
	f.Fuzz(func(t *testing.T, typ uint8, exchange, symbol, id, price, qty string, ts, recvTS, first, last int64, lp, lq string) {
		e := Event{Type: EventType(typ%3 + 1), Exchange: exchange, Symbol: symbol, TS: ts, RecvTS: recvTS, ID: id, Price: price, Qty: qty,
			Side: Side(typ / 3 % 3), FirstID: first, PrevID: last / 2, LastID: last, Depth: int(first % 1001), Flags: typ >> 7,
			Bids: []Level{{lp, lq}}, Asks: []Level{{lq, lp}, {price, qty}}}
		if got, want := e.AppendJSON(nil), referenceAppendJSON(&e, nil); !bytes.Equal(got, want) {
			t.Fatalf("body\n got %q\nwant %q", got, want)
		}
		if e.Type == EventTrade {
			if got, want := string(e.AppendMsgID(nil)), referenceMsgID(&e); got != want {
				t.Fatalf("msg ID %q, want %q", got, want)
			}
		}
	})
}

// TestAppendInt: appendInt writes what strconv does around every digit
// count and chunk boundary, and every 8-digit value appendDigits8 sees in
// a sample.
func TestAppendInt(t *testing.T) {
	check := func(v int64) {
		t.Helper()
		if got, want := string(appendInt([]byte("x"), v)), strconv.AppendInt([]byte("x"), v, 10); got != string(want) {
			t.Fatalf("appendInt(%d) = %s, want %s", v, got, want)
		}
	}
	for p := int64(1); p > 0 && p <= math.MaxInt64/10*10; p *= 10 {
		for _, d := range []int64{-1, 0, 1} {
			check(p + d)
			check(-(p + d))
			check(p*9 + d)
		}
		if p > math.MaxInt64/10 {
			break
		}
	}
	check(math.MaxInt64)
	check(math.MinInt64)
	for v := int64(0); v < 100000; v++ {
		check(v)
		check(v * 1009)
		check(v*1e11 + v)
	}
	for x := uint64(0); x < 1e8; x += 7919 {
		if got, want := string(appendDigits8(nil, x)), strconv.FormatUint(x+1e8, 10)[1:]; got != want {
			t.Fatalf("appendDigits8(%d) = %s, want %s", x, got, want)
		}
	}
}

// FuzzAppendInt: appendInt matches strconv.AppendInt for any value.
func FuzzAppendInt(f *testing.F) {
	f.Add(int64(1672515782134000000))
	f.Add(int64(99999999))
	f.Add(int64(-5))
	f.Fuzz(func(t *testing.T, v int64) {
		for _, v := range []int64{v, v / 1000, v % 1e8, v % 1e16} {
			if got, want := appendInt(nil, v), strconv.AppendInt(nil, v, 10); !bytes.Equal(got, want) {
				t.Fatalf("appendInt(%d) = %s, want %s", v, got, want)
			}
		}
	})
}

// TestSafePrefix: safePrefix gives the byte loop's answer for every
// string of 0..17 bytes with one byte of each value at each position (the
// rest safe), which covers the overlapping halves of the short-string
// check and the overlapping tail word of the longer ones.
func TestSafePrefix(t *testing.T) {
	ref := func(s string) int {
		i := 0
		for i < len(s) && jsonSafe[s[i]] {
			i++
		}
		return i
	}
	for n := 0; n <= 17; n++ {
		b := bytes.Repeat([]byte("0"), n)
		if got := safePrefix(string(b)); got != n {
			t.Fatalf("safePrefix(%q) = %d, want %d", b, got, n)
		}
		for pos := range n {
			for c := range 256 {
				b[pos] = byte(c)
				if got, want := safePrefix(string(b)), ref(string(b)); got != want {
					t.Fatalf("safePrefix(%q) = %d, want %d", b, got, want)
				}
			}
			b[pos] = '0'
		}
	}
}
