package main

import (
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
)

func TestNotConnected(t *testing.T) {
	tests := []struct {
		c    bridge.ConnStats
		want string
	}{
		{bridge.ConnStats{Shard: 1, State: "FAILED", LastError: "dial: refused"}, "binance connection binance-1 is FAILED (last error: dial: refused)"},
		{bridge.ConnStats{Connection: "binance-0.3", State: "RECONNECTING"}, "binance connection binance-0.3 is RECONNECTING"},
	}
	for _, tt := range tests {
		got := notConnected("binance", tt.c)
		if got != tt.want || strings.Contains(got, "  ") {
			t.Errorf("notConnected(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}
