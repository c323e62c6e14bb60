package jscan

import (
	"errors"
	"testing"

	"github.com/qldata/mdbridge/bridge"
)

func TestObject(t *testing.T) {
	sc := New(` {"a":[1,2,3],"b":{"c":true},"d":[]} `)
	var keys []string
	n := 0
	err := sc.Object(func(key string) error {
		keys = append(keys, key)
		if key == "a" {
			var err error
			n, err = sc.SkipCount()
			return err
		}
		return sc.Skip()
	})
	if err != nil || sc.End() != nil || len(keys) != 3 || keys[2] != "d" || n != 3 {
		t.Fatalf("err %v, keys %q, %d elements", err, keys, n)
	}
	stop := errors.New("stop")
	sc = New(`{"a":1,"b":2}`)
	calls := 0
	if err := sc.Object(func(string) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("member error: %v after %d calls", err, calls)
	}
	for _, bad := range []string{`[1]`, `{"a":1,}`, `{"a" 1}`, `{"a":1`} {
		sc := New(bad)
		if err := sc.Object(func(string) error { return sc.Skip() }); !errors.Is(err, ErrSyntax) {
			t.Errorf("Object(%s) err = %v", bad, err)
		}
	}
}

func TestID(t *testing.T) {
	for in, want := range map[string]string{`"abc"`: "abc", `"a\"b"`: `a"b`, `42`: "42", `-1.5`: "-1.5", `null`: ""} {
		sc := New(in)
		if got, err := sc.ID(); err != nil || got != want {
			t.Errorf("ID(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`true`, `{}`, `nul`} {
		sc := New(bad)
		if _, err := sc.ID(); err == nil {
			t.Errorf("ID(%s) accepted", bad)
		}
	}
}

func TestSides(t *testing.T) {
	sides := func(s string) ([]bridge.Level, []bridge.Level, error) {
		sc := New(s)
		var pos [2]int
		var n [2]int
		i := 0
		if err := sc.Object(func(string) (err error) {
			pos[i] = sc.Pos()
			n[i], err = sc.SkipCount()
			i++
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return sc.Sides(pos[0], n[0], pos[1], n[1])
	}
	b, a, err := sides(`{"b":[["1","2"],["0.5","0"]],"a":[["3","4"]]}`)
	if err != nil || len(b) != 2 || cap(b) != 2 || len(a) != 1 || a[0] != (bridge.Level{"3", "4"}) {
		t.Fatalf("bids %v asks %v err %v", b, a, err)
	}
	if b, a, err := sides(`{"b":[],"a":[["3","4"]]}`); err != nil || b != nil || len(a) != 1 {
		t.Errorf("empty bids: %v %v %v", b, a, err)
	}
	if b, a, err := sides(`{"b":[],"a":[]}`); err != nil || b != nil || a != nil {
		t.Errorf("empty book: %v %v %v", b, a, err)
	}
	if _, _, err := sides(`{"b":[["1"]],"a":[]}`); !errors.Is(err, ErrSyntax) {
		t.Errorf("bad bid: err = %v", err)
	}
	if _, _, err := sides(`{"b":[],"a":[["1","x"]]}`); !errors.Is(err, ErrSyntax) {
		t.Errorf("bad ask: err = %v", err)
	}
}

func TestSeen(t *testing.T) {
	var s Seen
	if err := s.Add(1, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(2, "b"); err != nil || !s.Has(1|2) || s.Has(4) {
		t.Fatalf("seen %b, err %v", s, err)
	}
	if err := s.Add(1, "a"); !errors.Is(err, ErrSyntax) {
		t.Errorf("duplicate: err = %v", err)
	}
}
