package resilience

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

func TestResilienceConfigEnv(t *testing.T) {
	t.Run("defaults from tags equal DefaultResilienceConfig", func(t *testing.T) {
		var c ResilienceConfig
		if err := envconfig.Process("MDBTEST", &c); err != nil {
			t.Fatal(err)
		}
		if c != DefaultResilienceConfig() {
			t.Fatalf("env defaults %+v != DefaultResilienceConfig %+v", c, DefaultResilienceConfig())
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("every variable", func(t *testing.T) {
		for k, v := range map[string]string{
			"MDBTEST_AUTO_RECONNECT":         "false",
			"MDBTEST_MAX_RECONNECT_ATTEMPTS": "0",
			"MDBTEST_RECONNECT_DELAY":        "500ms",
			"MDBTEST_RECONNECT_DELAY_MAX":    "2m",
			"MDBTEST_HEARTBEAT_INTERVAL":     "10s",
			"MDBTEST_RATE_LIMIT_ENABLED":     "false",
			"MDBTEST_SEQUENCE_TRACKING":      "false",
			"MDBTEST_TIME_SYNC_ENABLED":      "false",
		} {
			t.Setenv(k, v)
		}
		var c ResilienceConfig
		if err := envconfig.Process("MDBTEST", &c); err != nil {
			t.Fatal(err)
		}
		want := ResilienceConfig{MaxReconnectAttempts: 0, ReconnectDelay: 500 * time.Millisecond, ReconnectDelayMax: 2 * time.Minute, HeartbeatInterval: 10 * time.Second}
		if c != want {
			t.Fatalf("got %+v, want %+v", c, want)
		}
	})
}

func TestResilienceConfigValidate(t *testing.T) {
	mod := func(f func(*ResilienceConfig)) ResilienceConfig {
		c := DefaultResilienceConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name   string
		cfg    ResilienceConfig
		fields []string
	}{
		{name: "default", cfg: DefaultResilienceConfig()},
		{name: "disabled", cfg: DisabledResilienceConfig()},
		{name: "zero value", cfg: ResilienceConfig{}},
		{name: "infinite attempts", cfg: mod(func(c *ResilienceConfig) { c.MaxReconnectAttempts = 0 })},
		{name: "negative attempts", cfg: mod(func(c *ResilienceConfig) { c.MaxReconnectAttempts = -1 }), fields: []string{"MaxReconnectAttempts (MAX_RECONNECT_ATTEMPTS)"}},
		{name: "negative delay", cfg: mod(func(c *ResilienceConfig) { c.ReconnectDelay = -time.Second }), fields: []string{"ReconnectDelay (RECONNECT_DELAY)"}},
		{name: "negative max", cfg: mod(func(c *ResilienceConfig) { c.ReconnectDelayMax = -time.Second }), fields: []string{"ReconnectDelayMax"}},
		{name: "negative heartbeat", cfg: mod(func(c *ResilienceConfig) { c.HeartbeatInterval = -time.Second }), fields: []string{"HeartbeatInterval (HEARTBEAT_INTERVAL)"}},
		{name: "delay above max", cfg: mod(func(c *ResilienceConfig) { c.ReconnectDelay = 2 * time.Minute }), fields: []string{"ReconnectDelay"}},
		{name: "delay above default max", cfg: ResilienceConfig{ReconnectDelay: 2 * time.Minute}, fields: []string{"ReconnectDelay"}},
		{name: "several at once", cfg: ResilienceConfig{MaxReconnectAttempts: -1, HeartbeatInterval: -1}, fields: []string{"MaxReconnectAttempts", "HeartbeatInterval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.fields) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				// A valid config always derives valid component configs.
				if _, err := NewReconnectionManager(tt.cfg.ReconnectConfig()); err != nil {
					t.Fatal(err)
				}
				if _, err := NewHeartbeatMonitor(tt.cfg.HeartbeatConfig()); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tt.fields {
				if !strings.Contains(err.Error(), "ResilienceConfig."+f) {
					t.Errorf("err %q does not name %s", err, f)
				}
			}
		})
	}
}

func TestResilienceConfigDerive(t *testing.T) {
	tests := []struct {
		name string
		cfg  ResilienceConfig
		rc   ReconnectConfig
		hc   HeartbeatConfig
	}{
		{name: "default", cfg: DefaultResilienceConfig(),
			rc: DefaultReconnectConfig(), hc: DefaultHeartbeatConfig()},
		{name: "seed production", cfg: ResilienceConfig{AutoReconnect: true, MaxReconnectAttempts: 20, ReconnectDelay: time.Second, ReconnectDelayMax: 120 * time.Second},
			rc: ReconnectConfig{MaxAttempts: 20, InitialDelay: time.Second, MaxDelay: 2 * time.Minute, BackoffFactor: 2},
			hc: DefaultHeartbeatConfig()},
		{name: "seed high frequency", cfg: ResilienceConfig{HeartbeatInterval: 10 * time.Second, ReconnectDelay: 500 * time.Millisecond},
			rc: ReconnectConfig{InitialDelay: 500 * time.Millisecond, MaxDelay: time.Minute, BackoffFactor: 2},
			hc: HeartbeatConfig{Timeout: 10 * time.Second, PingInterval: 10 * time.Second / 3}},
		{name: "seed low frequency", cfg: ResilienceConfig{HeartbeatInterval: time.Minute, ReconnectDelay: 5 * time.Second},
			rc: ReconnectConfig{InitialDelay: 5 * time.Second, MaxDelay: time.Minute, BackoffFactor: 2},
			hc: HeartbeatConfig{Timeout: time.Minute, PingInterval: 10 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.ReconnectConfig(); got != tt.rc {
				t.Errorf("ReconnectConfig = %+v, want %+v", got, tt.rc)
			}
			if got := tt.cfg.HeartbeatConfig(); got != tt.hc {
				t.Errorf("HeartbeatConfig = %+v, want %+v", got, tt.hc)
			}
		})
	}
	d := DisabledResilienceConfig()
	if d.AutoReconnect || d.RateLimitEnabled || d.SequenceTracking || d.TimeSyncEnabled {
		t.Fatalf("disabled config has features on: %+v", d)
	}
}
