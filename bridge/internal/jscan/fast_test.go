package jscan

import "testing"

// FuzzFastScan: the word-at-a-time scanners (Str, Uint, Decimal) give what
// their byte-at-a-time versions give (value, position, success) for any
// input and start offset, including near the end of the input where they
// fall back to them.
func FuzzFastScan(f *testing.F) {
	f.Add([]byte(`{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}`), uint8(11))
	f.Add([]byte(`1672515782136,"s":"BTCUSDT","t":100000000000,"p":"16850.10000000","q":"0.01200000"`), uint8(0))
	f.Add([]byte(`16850.10000000","q":"0.012000000000000000000000000000000000000000000000000000000000000000000000"`), uint8(0))
	f.Add([]byte(`9223372036854775807,"m":true,"M":true}}`), uint8(0))
	f.Add([]byte(`btc\usdt@trade","data":{"e":"trade"`), uint8(0))
	f.Add([]byte("0123456789012345678\xff\x00\x7f\"\\."), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, at uint8) {
		pos := int(at) % (len(in) + 1)
		s := string(in)
		fast, slow := Fast{s: s, pos: pos, ok: true}, Fast{s: s, pos: pos, ok: true}
		if a, b := fast.Str(), slow.strSlow(); a != b || fast != slow {
			t.Fatalf("str at %d of %q: %q %+v, byte at a time %q %+v", pos, s, a, fast, b, slow)
		}
		fast, slow = Fast{s: s, pos: pos, ok: true}, Fast{s: s, pos: pos, ok: true}
		an, as := fast.Uint()
		bn, bs := slow.uintSlow()
		if an != bn || as != bs || fast != slow {
			t.Fatalf("uint at %d of %q: %d %q %+v, byte at a time %d %q %+v", pos, s, an, as, fast, bn, bs, slow)
		}
		fast, slow = Fast{s: s, pos: pos, ok: true}, Fast{s: s, pos: pos, ok: true}
		if a, b := fast.Decimal(), slow.decimalSlow(); a != b || fast != slow {
			t.Fatalf("decimal at %d of %q: %q %+v, byte at a time %q %+v", pos, s, a, fast, b, slow)
		}
	})
}
