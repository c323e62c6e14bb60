package chaos

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/exsim"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero value", Config{}, ""},
		{"negative duration", Config{Duration: -time.Second}, "Duration"},
		{"fault every too small", Config{FaultEvery: time.Millisecond}, "FaultEvery"},
		{"nats port", Config{NATSPort: 70000}, "NATSPort"},
		{"unknown venue", Config{Markets: []exsim.MarketConfig{{Venue: "kraken", Symbol: "X"}}}, "unknown venue"},
		{"market twice", Config{Markets: []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "X"}, {Venue: exsim.Binance, Symbol: "X"}}}, "twice"},
		{"unknown kind", Config{Kinds: []FaultKind{"meteor"}}, "unknown fault kind"},
		{"bybit depth", Config{BybitDepth: 25}, "BybitDepth"},
		{"bybit depth 1", Config{BybitDepth: 1}, ""},
		{"replicas too many", Config{Replicas: MaxReplicas + 1}, "Replicas"},
		{"redundancy above replicas", Config{Replicas: 2, Redundancy: 3}, "Redundancy 3 exceeds Replicas 2"},
		{"redundancy above default replicas", Config{Redundancy: 4}, "Redundancy 4 exceeds Replicas 3"},
		{"negative redundancy", Config{Redundancy: -1}, "Redundancy"},
		{"one replica", Config{Replicas: 1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want ErrConfig naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Duration != DefaultDuration || c.HeartbeatTimeout != DefaultHeartbeatTimeout || len(c.Markets) == 0 || len(c.Kinds) != len(AllKinds()) ||
		c.BybitDepth != DefaultBybitDepth || c.SnapshotEvery != DefaultSnapshotEvery || c.Replicas != 3 || c.Redundancy != 2 {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

// TestConfigRedundancyDefault: one replica gets R=1 by default (R may not
// exceed the replicas).
func TestConfigRedundancyDefault(t *testing.T) {
	if c := (Config{Replicas: 1}).withDefaults(); c.Redundancy != 1 {
		t.Fatalf("Redundancy %d with 1 replica", c.Redundancy)
	}
}
