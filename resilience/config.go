package resilience

import (
	"errors"
	"fmt"
	"time"
)

// ResilienceConfig is the seed's integrated resilience switchboard, one per
// stream. Load it from the environment with envconfig (field names are
// split into words: under prefix MDB_, ReconnectDelayMax is
// MDB_RECONNECT_DELAY_MAX); the default tags are the seed's defaults.
//
// The zero value has every feature off; start from DefaultResilienceConfig
// (the seed's "on by default") or DisabledResilienceConfig (the seed's
// resilience=False). Zero durations mean the component defaults.
type ResilienceConfig struct {
	// AutoReconnect: reconnect with backoff after a connection is lost.
	AutoReconnect bool `split_words:"true" default:"true" desc:"reconnect automatically with exponential backoff"`
	// MaxReconnectAttempts: consecutive failed attempts after which the
	// connection reports state Failed (ShouldReconnect turns false); 0 =
	// never. The seed stops there; the bridge keeps retrying at
	// ReconnectDelayMax while Failed. Seed default 10.
	MaxReconnectAttempts int `split_words:"true" default:"10" desc:"consecutive failed reconnects after which a connection reports FAILED; it keeps retrying every RECONNECT_DELAY_MAX (the bridge never gives up); 0 = never report FAILED"`
	// ReconnectDelay: backoff ceiling after the first failure. Seed default 1s.
	ReconnectDelay time.Duration `split_words:"true" default:"1s" desc:"initial reconnect backoff"`
	// ReconnectDelayMax: backoff cap. Seed default 60s.
	ReconnectDelayMax time.Duration `split_words:"true" default:"60s" desc:"maximum reconnect backoff, and the retry period once FAILED"`
	// HeartbeatInterval: how long a connection may be silent before it is
	// declared dead and reconnected; it is the HeartbeatMonitor's Timeout
	// (the seed's heartbeat_interval default of 30s equals its
	// HeartbeatMonitor timeout default). Seed default 30s.
	HeartbeatInterval time.Duration `split_words:"true" default:"30s" desc:"silence after which a connection is declared dead and replaced (the bridge requires at least 1s)"`
	// RateLimitEnabled: pace REST calls with a RateLimitManager.
	RateLimitEnabled bool `split_words:"true" default:"true" desc:"pace REST requests under the exchange's weight limit"`
	// SequenceTracking: detect gaps and duplicates with a SequenceTracker.
	SequenceTracking bool `split_words:"true" default:"true" desc:"detect sequence gaps and duplicates"`
	// TimeSyncEnabled: estimate the exchange clock offset with a
	// TimeSyncManager.
	TimeSyncEnabled bool `split_words:"true" default:"true" desc:"track the exchange clock offset"`
}

// DefaultResilienceConfig returns the seed's defaults: everything on, 10
// reconnect attempts, 1s..60s backoff, 30s heartbeat.
func DefaultResilienceConfig() ResilienceConfig {
	return ResilienceConfig{
		AutoReconnect:        true,
		MaxReconnectAttempts: DefaultMaxAttempts,
		ReconnectDelay:       DefaultInitialDelay,
		ReconnectDelayMax:    DefaultMaxDelay,
		HeartbeatInterval:    DefaultHeartbeatTimeout,
		RateLimitEnabled:     true,
		SequenceTracking:     true,
		TimeSyncEnabled:      true,
	}
}

// DisabledResilienceConfig returns the seed's resilience=False: every
// feature off (for tests and special cases), durations at their defaults
// so the value still validates.
func DisabledResilienceConfig() ResilienceConfig {
	c := DefaultResilienceConfig()
	c.AutoReconnect, c.RateLimitEnabled, c.SequenceTracking, c.TimeSyncEnabled = false, false, false, false
	return c
}

// Validate checks the numeric fields. The error joins one error per bad
// field, each wrapping ErrInvalidConfig and naming the field and its
// environment variable suffix.
func (c ResilienceConfig) Validate() error {
	var errs []error
	bad := func(field, env, format string, args ...any) {
		errs = append(errs, configError(fmt.Sprintf("ResilienceConfig.%s (%s)", field, env), format, args...))
	}
	if c.MaxReconnectAttempts < 0 {
		bad("MaxReconnectAttempts", "MAX_RECONNECT_ATTEMPTS", "must not be negative (got %d; 0 means infinite)", c.MaxReconnectAttempts)
	}
	if c.ReconnectDelay < 0 {
		bad("ReconnectDelay", "RECONNECT_DELAY", "must not be negative (got %s)", c.ReconnectDelay)
	}
	if c.ReconnectDelayMax < 0 {
		bad("ReconnectDelayMax", "RECONNECT_DELAY_MAX", "must not be negative (got %s)", c.ReconnectDelayMax)
	}
	if c.HeartbeatInterval < 0 {
		bad("HeartbeatInterval", "HEARTBEAT_INTERVAL", "must not be negative (got %s)", c.HeartbeatInterval)
	}
	if c.ReconnectDelay >= 0 && c.ReconnectDelayMax >= 0 {
		r := c.ReconnectConfig()
		if r.InitialDelay > r.MaxDelay {
			bad("ReconnectDelay", "RECONNECT_DELAY", "must not exceed ReconnectDelayMax (%s > %s)", r.InitialDelay, r.MaxDelay)
		}
	}
	return errors.Join(errs...)
}

// ReconnectConfig derives the ReconnectionManager configuration:
// MaxReconnectAttempts, ReconnectDelay and ReconnectDelayMax, with the
// default BackoffFactor. Whether to reconnect at all (AutoReconnect) is the
// caller's decision.
func (c ResilienceConfig) ReconnectConfig() ReconnectConfig {
	r := ReconnectConfig{
		MaxAttempts:   c.MaxReconnectAttempts,
		InitialDelay:  c.ReconnectDelay,
		MaxDelay:      c.ReconnectDelayMax,
		BackoffFactor: DefaultBackoffFactor,
	}
	if r.InitialDelay == 0 {
		r.InitialDelay = DefaultInitialDelay
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = DefaultMaxDelay
	}
	return r
}

// HeartbeatConfig derives the HeartbeatMonitor configuration: Timeout is
// HeartbeatInterval and PingInterval is the default 10s, or a third of the
// timeout if that is shorter, so a quiet connection is pinged well before
// it times out.
func (c ResilienceConfig) HeartbeatConfig() HeartbeatConfig {
	t := c.HeartbeatInterval
	if t == 0 {
		t = DefaultHeartbeatTimeout
	}
	return HeartbeatConfig{Timeout: t, PingInterval: min(DefaultHeartbeatPingInterval, t/3)}
}
