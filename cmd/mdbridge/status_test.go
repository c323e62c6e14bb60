package main

import (
	"strings"
	"testing"
)

func TestErrorColumn(t *testing.T) {
	tests := []struct{ state, err, want string }{
		{"CONNECTED", "", ""},
		{"CONNECTED", "stale: no data for 30s", "earlier: stale: no data for 30s"},
		{"RECONNECTING", "stale: no data for 30s", "stale: no data for 30s"},
		{"FAILED", strings.Repeat("x", 80), strings.Repeat("x", 57) + "..."},
	}
	for _, tt := range tests {
		if got := errorColumn(tt.state, tt.err); got != tt.want {
			t.Errorf("errorColumn(%s, %q) = %q, want %q", tt.state, tt.err, got, tt.want)
		}
	}
}
