package jscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
)

func TestSkipMatchesJSONValid(t *testing.T) {
	for _, s := range []string{
		`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `-12E+4`, `true`, `false`, `null`,
		`{"a":[1,{"b":null}],"c":"\u00e9\n\"x\""}`, ` [ 1 , 2 ] `,
		`01`, `1.`, `.5`, `-`, `1e`, `+1`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `"abc`, `"\x"`, `"\u12g4"`,
		"\"a\x01\"", `tru`, `nul`, `[`, `{`, `{"a":1 "b":2}`, `[1 2]`, ``, ` `, `1 2`,
	} {
		sc := New(s)
		err := sc.Skip()
		if err == nil {
			err = sc.End()
		}
		if got, want := err == nil, json.Valid([]byte(s)); got != want {
			t.Errorf("%q: scanner valid=%v (err %v), encoding/json valid=%v", s, got, err, want)
		}
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: error %v does not wrap ErrSyntax", s, err)
		}
	}
}

func TestUint(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"123", 123, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false}, {"-1", 0, false}, {"1.0", 0, false}, {"1e3", 0, false},
		{"01", 0, false}, {`"1"`, 0, false}, {"", 0, false},
	} {
		sc := New(c.in)
		n, raw, err := sc.Uint()
		if (err == nil) != c.ok || n != c.want || (c.ok && raw != c.in) {
			t.Errorf("Uint(%q) = %d, %q, %v", c.in, n, raw, err)
		}
	}
}

func TestIsDecimal(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "0.001": true, "27000.10": true, "100": true,
		"": false, ".5": false, "5.": false, "1.2.3": false, "-1": false, "1e5": false, " 1": false,
		strings.Repeat("1", MaxDecimalLen): true, strings.Repeat("1", MaxDecimalLen+1): false,
	} {
		if got := IsDecimal(s); got != want {
			t.Errorf("IsDecimal(%q) = %v", s, got)
		}
	}
}

func TestLevels(t *testing.T) {
	sc := New(`[["1.5","2"], ["3","0"]]`)
	n, err := sc.SkipCount()
	if err != nil || n != 2 {
		t.Fatalf("SkipCount = %d, %v", n, err)
	}
	sc.Seek(0)
	got, err := sc.Levels(make([]bridge.Level, n))
	if err != nil || len(got) != 2 || got[0] != (bridge.Level{"1.5", "2"}) || got[1] != (bridge.Level{"3", "0"}) {
		t.Fatalf("Levels = %v, %v", got, err)
	}
	for _, bad := range []string{`[["1"]]`, `[["1","2","3"]]`, `[[1,"2"]]`, `[["1","x"]]`, `[{}]`, `{}`, `[["1","2"],["3","4"]]`} {
		sc := New(bad)
		if _, err := sc.Levels(make([]bridge.Level, 1)); err == nil {
			t.Errorf("Levels(%q) accepted", bad)
		}
	}
}

func TestStringUnquote(t *testing.T) {
	sc := New(`"a\"b\u00e9"`)
	s, err := sc.String()
	if err != nil || s != "a\"bé" {
		t.Errorf("String = %q, %v", s, err)
	}
}

// FuzzSkip: the scanner accepts exactly what encoding/json accepts (up to
// MaxDepth nesting) and never panics.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `[1e5,-0.5,true,null]`, `"\u00e9"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := New(s)
		err := sc.Skip()
		if err == nil {
			err = sc.End()
		}
		valid := json.Valid([]byte(s))
		if err == nil && !valid {
			t.Fatalf("scanner accepted invalid JSON %q", s)
		}
		if err != nil && valid && !strings.Contains(err.Error(), "nesting too deep") {
			t.Fatalf("scanner rejected valid JSON %q: %v", s, err)
		}
	})
}

// FuzzPlainRun: plainRun stops where a byte-at-a-time loop stops, from any
// offset.
func FuzzPlainRun(f *testing.F) {
	f.Add([]byte(`{"topic":"publicTrade.BTCUSDT","ts":1672304486868,"type":"snapshot"}`), uint8(2))
	f.Add([]byte("abcdefgh\x80\xff\x1f\"\\ijklmnopqrstuvwxyz\x7f\x00"), uint8(0))
	f.Add([]byte(`0123456789abcdef0123456789abcdef\`), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, at uint8) {
		s := string(in)
		i := int(at) % (len(s) + 1)
		want := i
		for want < len(s) && s[want] != '"' && s[want] != '\\' && s[want] >= 0x20 {
			want++
		}
		if got := plainRun(s, i); got != want {
			t.Fatalf("plainRun(%q, %d) = %d, want %d", s, i, got, want)
		}
	})
}
