package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{nil, -1}, {[]string{"-n", "3"}, -1}, {[]string{"-h"}, ExitOK}, {[]string{"-bogus"}, ExitUsage}, {[]string{"-n", "x"}, ExitUsage},
	} {
		var stderr bytes.Buffer
		fs := NewFlags("demo", "[-n N]", &stderr)
		n := fs.Int("n", 1, "a number")
		if got := Parse(fs, tt.args); got != tt.want {
			t.Errorf("Parse(%q) = %d, want %d", tt.args, got, tt.want)
		}
		if tt.want == ExitOK && !strings.Contains(stderr.String(), "Usage: mdbridge demo [-n N]") {
			t.Errorf("-h printed %q", stderr.String())
		}
		if tt.want == -1 && len(tt.args) > 0 && (*n != 3 || !Given(fs)["n"]) {
			t.Errorf("-n not parsed: %d, given %v", *n, Given(fs))
		}
	}
}

func TestLogger(t *testing.T) {
	if _, err := ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), "allowed: debug, info, warn, error") {
		t.Fatalf("ParseLevel(loud) = %v", err)
	}
	var b bytes.Buffer
	NewLogger(&b, "warn", "json").Info("hidden")
	NewLogger(&b, "warn", "json").Warn("shown")
	if s := b.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `"msg":"shown"`) {
		t.Fatalf("log %q", s)
	}
}
