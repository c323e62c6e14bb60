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
