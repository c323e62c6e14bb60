package symtab

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/qldata/mdbridge/bridge"
)

func TestTable(t *testing.T) {
	var tab Table
	if s, err := tab.Intern("BTCUSDT"); err != nil || s != "BTCUSDT" {
		t.Fatalf("Intern before Add = %q, %v", s, err)
	}
	tab.Add("BTCUSDT", "ETHUSDT", "bad.sym")
	frame := `{"s":"BTCUSDT"}`
	a, _ := tab.Intern(frame[6:13])
	b, _ := tab.Intern("BTC" + "USDT")
	if a != "BTCUSDT" || unsafe.StringData(a) != unsafe.StringData(b) || unsafe.StringData(a) == unsafe.StringData(frame[6:13]) {
		t.Errorf("not interned: %q %q", a, b)
	}
	if _, err := tab.Intern("bad.sym"); !errors.Is(err, bridge.ErrBadIdent) {
		t.Errorf("invalid symbol: err = %v", err)
	}
	tab.Add("ETHUSDT") // no-op
	if m := tab.m.Load(); len(*m) != 2 {
		t.Errorf("table has %d entries, want 2", len(*m))
	}
}

// TestIndexMatchesMap: with thousands of symbols of every length from 1 to
// 40 bytes, Intern finds each registered symbol's canonical copy through
// the index, and symbols that are not registered (a prefix, an extension,
// one byte changed) are copied, not mistaken for registered ones.
func TestIndexMatchesMap(t *testing.T) {
	var tab Table
	var syms []string
	for i := range 3000 {
		n := 1 + i%40
		b := make([]byte, n)
		for j := range b {
			b[j] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(i*7+j*13+i/40)%36]
		}
		syms = append(syms, string(b))
	}
	tab.Add(syms[:1000]...)
	tab.Add(syms[1000:]...) // a second version: the index is rebuilt
	m := *tab.m.Load()
	for _, s := range syms {
		c, err := tab.Intern(string([]byte(s)))
		if err != nil || c != s || unsafe.StringData(c) != unsafe.StringData(m[s]) {
			t.Fatalf("Intern(%q) = %q, %v: not the canonical copy", s, c, err)
		}
		for _, other := range []string{s + "X", s[:len(s)-1], "Z" + s[1:], s[:len(s)-1] + "z"} {
			if _, registered := m[other]; registered || other == "" {
				continue
			}
			c, err := tab.Intern(other)
			if err == nil && unsafe.StringData(c) == unsafe.StringData(m[c]) {
				t.Fatalf("Intern(%q) returned a registered symbol's copy %q", other, c)
			}
			if err == nil && c != other {
				t.Fatalf("Intern(%q) = %q", other, c)
			}
		}
	}
}

func BenchmarkIntern(b *testing.B) {
	var tab Table
	tab.Add("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "1000PEPEUSDT")
	frame := []byte(`{"s":"BTCUSDT"}`)
	s := unsafe.String(&frame[6], 7)
	for b.Loop() {
		if _, err := tab.Intern(s); err != nil {
			b.Fatal(err)
		}
	}
}
