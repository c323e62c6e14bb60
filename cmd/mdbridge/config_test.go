package main

import (
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

func TestLoadConfigDefaults(t *testing.T) {
	clearEnv(t)
	c, err := loadConfig()
	if err != nil {
		t.Fatalf("defaults must be valid: %v", err)
	}
	if c.Stream != "MD" || c.SubjectPrefix != "md" || c.KVBucket != "md_state" || c.BufferPolicy != "block" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if len(c.subs) != 1 || c.subs[0].Exchange != "binance" || c.subs[0].Symbols[0] != "BTCUSDT" {
		t.Fatalf("default subscription = %+v", c.subs)
	}
	if c.Instance == "" {
		t.Fatal("instance must default to the host name")
	}
	if c.MaxBytes != publisher.DefaultMaxBytes || c.streamMaxBytes() != publisher.DefaultMaxBytes {
		t.Fatalf("MDB_MAX_BYTES default %d (stream %d), want 10 GiB", c.MaxBytes, c.streamMaxBytes())
	}
	if c.Resilience != resilience.DefaultResilienceConfig() {
		t.Fatalf("resilience defaults %+v, want the library's %+v", c.Resilience, resilience.DefaultResilienceConfig())
	}
}

// TestMaxBytesUnlimited: MDB_MAX_BYTES 0 and -1 both mean unlimited, which
// the stream gets as -1 (0 would leave an earlier limit in place).
func TestMaxBytesUnlimited(t *testing.T) {
	for _, v := range []string{"0", "-1"} {
		clearEnv(t)
		t.Setenv("MDB_MAX_BYTES", v)
		c, err := loadConfig()
		if err != nil {
			t.Fatalf("MDB_MAX_BYTES=%s: %v", v, err)
		}
		pc, err := c.publisherConfig()
		if err != nil {
			t.Fatal(err)
		}
		if pc.MaxBytes != -1 {
			t.Fatalf("MDB_MAX_BYTES=%s: stream MaxBytes %d, want -1 (unlimited)", v, pc.MaxBytes)
		}
	}
}

// TestUSDMOpenInterestEvery: MDB_BINANCE_USDM_OPEN_INTEREST_EVERY
// defaults to 1m; 0 switches the poll off (the node gets a negative
// period, as the adapter takes 0 for its default); negative is refused.
func TestUSDMOpenInterestEvery(t *testing.T) {
	for v, want := range map[string]time.Duration{"": time.Minute, "0": -1, "15s": 15 * time.Second} {
		clearEnv(t)
		if v != "" {
			t.Setenv("MDB_BINANCE_USDM_OPEN_INTEREST_EVERY", v)
		}
		c, err := loadConfig()
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if got := c.nodeConfig(publisher.Config{}).Venues.BinanceUSDMOpenInterestEvery; got != want {
			t.Errorf("%q: node period %s, want %s", v, got, want)
		}
	}
}

// TestUsageReconnectAttempts: the help says what the bridge does after
// MDB_RESILIENCE_MAX_RECONNECT_ATTEMPTS failures: it reports FAILED and
// keeps retrying, it never gives up.
func TestUsageReconnectAttempts(t *testing.T) {
	var b strings.Builder
	usage(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if !strings.Contains(line, "MDB_RESILIENCE_MAX_RECONNECT_ATTEMPTS") {
			continue
		}
		if strings.Contains(line, "before giving up") || !strings.Contains(line, "FAILED") || !strings.Contains(line, "keeps retrying") {
			t.Fatalf("help line %q", line)
		}
		return
	}
	t.Fatalf("no MDB_RESILIENCE_MAX_RECONNECT_ATTEMPTS in the help:\n%s", b.String())
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"MDB_SUBSCRIBE": "kraken:trade:BTCUSD"}, []string{"MDB_SUBSCRIBE", "unknown exchange", "binance, bybit, bybit-linear"}},
		{map[string]string{"MDB_SUBSCRIBE": "binance:trade:BTC.USDT"}, []string{"MDB_SUBSCRIBE", "allowed are letters"}},
		{map[string]string{"MDB_SUBSCRIBE": "binance:trade:BTC>"}, []string{"MDB_SUBSCRIBE"}},
		{map[string]string{"MDB_SUBSCRIBE": "okx:trade:BTC*"}, []string{"MDB_SUBSCRIBE", "universes"}},
		{map[string]string{"MDB_SUBSCRIBE": "binance;trade"}, []string{"MDB_SUBSCRIBE", "<exchange>:<channels>:<symbols>"}},
		{map[string]string{"MDB_DUPLICATE_WINDOW": "-1s"}, []string{"MDB_DUPLICATE_WINDOW", "minimum"}},
		{map[string]string{"MDB_MAX_AGE": "-5m"}, []string{"MDB_MAX_AGE"}},
		{map[string]string{"MDB_MAX_AGE": "banana"}, []string{"MAX_AGE"}},
		{map[string]string{"MDB_STREAM_REPLICAS": "2"}, []string{"MDB_STREAM_REPLICAS", "1, 3, 5"}},
		{map[string]string{"MDB_BUFFER_POLICY": "yolo"}, []string{"MDB_BUFFER_POLICY", "block, drop-oldest"}},
		{map[string]string{"MDB_NATS_URL": "http://x:4222"}, []string{"MDB_NATS_URL", "nats"}},
		{map[string]string{"MDB_LOG_LEVEL": "loud"}, []string{"MDB_LOG_LEVEL", "debug, info, warn, error"}},
		{map[string]string{"MDB_SUBJECT_PREFIX": "md.x"}, []string{"MDB_SUBJECT_PREFIX"}},
		{map[string]string{"MDB_CONTROL_PREFIX": "md"}, []string{"MDB_CONTROL_PREFIX"}},
		{map[string]string{"MDB_NATS_TLS_CERT": "/nonexistent.pem"}, []string{"MDB_NATS_TLS_CERT"}},
		{map[string]string{"MDB_INSTANCE": "pod.1"}, []string{"MDB_INSTANCE"}},
		{map[string]string{"MDB_RESILIENCE_HEARTBEAT_INTERVAL": "0"}, []string{"MDB_RESILIENCE_HEARTBEAT_INTERVAL", "minimum 1s", "30s"}},
		{map[string]string{"MDB_RESILIENCE_HEARTBEAT_INTERVAL": "500ms"}, []string{"MDB_RESILIENCE_HEARTBEAT_INTERVAL", "minimum 1s"}},
		{map[string]string{"MDB_MAX_BYTES": "-2"}, []string{"MDB_MAX_BYTES", "0 or -1 for unlimited"}},
		{map[string]string{"MDB_MAX_BYTES": "1000"}, []string{"MDB_MAX_BYTES", "1048576"}},
		{map[string]string{"MDB_BINANCE_USDM_OPEN_INTEREST_EVERY": "-1m"}, []string{"MDB_BINANCE_USDM_OPEN_INTEREST_EVERY", "0 = off"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(keys(tt.env), ","), func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := loadConfig()
			if err == nil {
				t.Fatalf("config %v accepted, want an error", tt.env)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("hunter2")
	for _, got := range []string{s.String(), s.LogValue().String()} {
		if strings.Contains(got, "hunter2") {
			t.Fatalf("secret leaked: %q", got)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Fatal("Reveal lost the value")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// clearEnv unsets every MDB_ variable for the duration of the test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix+"_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// TestSilenceCheck: MDB_SILENCE_CHECK reaches every stream (0 turns the
// check off), and a value too short to tell a quiet market from a silent
// feed is refused, naming the variable and what is allowed.
func TestSilenceCheck(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want time.Duration
		bad  bool
	}{
		{"", time.Minute, false}, {"30s", 30 * time.Second, false}, {"0", -1, false},
		{"2s", 0, true}, {"-1m", 0, true},
	} {
		clearEnv(t)
		if tt.env != "" {
			t.Setenv("MDB_SILENCE_CHECK", tt.env)
		}
		c, err := loadConfig()
		if tt.bad {
			if err == nil || !strings.Contains(err.Error(), "MDB_SILENCE_CHECK") {
				t.Errorf("MDB_SILENCE_CHECK=%s: err %v, want one naming the variable", tt.env, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("MDB_SILENCE_CHECK=%s: %v", tt.env, err)
		}
		var sc bridge.StreamConfig
		c.nodeConfig(publisher.Config{}).Tune(&sc)
		if sc.SilenceCheck != tt.want {
			t.Errorf("MDB_SILENCE_CHECK=%s: stream SilenceCheck %s, want %s", tt.env, sc.SilenceCheck, tt.want)
		}
	}
}

// TestTimeSyncInterval: MDB_TIME_SYNC_INTERVAL reaches every stream; a
// value under 10s is refused naming the variable.
func TestTimeSyncInterval(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want time.Duration
		bad  bool
	}{
		{"", 5 * time.Minute, false}, {"30s", 30 * time.Second, false},
		{"1s", 0, true}, {"0", 0, true}, {"-1m", 0, true},
	} {
		clearEnv(t)
		if tt.env != "" {
			t.Setenv("MDB_TIME_SYNC_INTERVAL", tt.env)
		}
		c, err := loadConfig()
		if tt.bad {
			if err == nil || !strings.Contains(err.Error(), "MDB_TIME_SYNC_INTERVAL") {
				t.Errorf("MDB_TIME_SYNC_INTERVAL=%s: err %v, want one naming the variable", tt.env, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("MDB_TIME_SYNC_INTERVAL=%s: %v", tt.env, err)
		}
		var sc bridge.StreamConfig
		c.nodeConfig(publisher.Config{}).Tune(&sc)
		if sc.TimeSyncInterval != tt.want {
			t.Errorf("MDB_TIME_SYNC_INTERVAL=%s: stream TimeSyncInterval %s, want %s", tt.env, sc.TimeSyncInterval, tt.want)
		}
	}
}

// TestStaleAfter: MDB_STALE_AFTER and MDB_STALE_AFTER_CHANNELS reach every
// stream; 0, negative or malformed values are refused naming the variable.
func TestStaleAfter(t *testing.T) {
	for _, tt := range []struct {
		after, channels string
		want            bridge.StaleConfig
		bad             string // the variable the error must name
	}{
		{want: bridge.StaleConfig{After: time.Minute}},
		{after: "30s", channels: "book=10s, trades=5m", want: bridge.StaleConfig{After: 30 * time.Second,
			Channels: map[bridge.Channel]time.Duration{bridge.ChannelBook: 10 * time.Second, bridge.ChannelTrade: 5 * time.Minute}}},
		{after: "0", bad: "MDB_STALE_AFTER"},
		{after: "-1m", bad: "MDB_STALE_AFTER"},
		{channels: "book=0s", bad: "MDB_STALE_AFTER_CHANNELS"},
		{channels: "book=-5s", bad: "MDB_STALE_AFTER_CHANNELS"},
		{channels: "candles=5s", bad: "MDB_STALE_AFTER_CHANNELS"},
		{channels: "kline.1m+open=5s", bad: "MDB_STALE_AFTER_CHANNELS"}, // two bits: say kline.1m
		{channels: "kline.1m=3m,ticker=30s", want: bridge.StaleConfig{After: time.Minute,
			Channels: map[bridge.Channel]time.Duration{bridge.KlineChannel(bridge.Interval1m): 3 * time.Minute, bridge.ChannelTicker: 30 * time.Second}}},
		{channels: "book", bad: "MDB_STALE_AFTER_CHANNELS"},
		{channels: "book=1s,book=2s", bad: "MDB_STALE_AFTER_CHANNELS"},
	} {
		clearEnv(t)
		if tt.after != "" {
			t.Setenv("MDB_STALE_AFTER", tt.after)
		}
		if tt.channels != "" {
			t.Setenv("MDB_STALE_AFTER_CHANNELS", tt.channels)
		}
		c, err := loadConfig()
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad+":") {
				t.Errorf("MDB_STALE_AFTER=%q MDB_STALE_AFTER_CHANNELS=%q: err %v, want one naming %s", tt.after, tt.channels, err, tt.bad)
			}
			continue
		}
		if err != nil {
			t.Fatalf("MDB_STALE_AFTER=%q MDB_STALE_AFTER_CHANNELS=%q: %v", tt.after, tt.channels, err)
		}
		var sc bridge.StreamConfig
		c.nodeConfig(publisher.Config{}).Tune(&sc)
		if sc.Stale.After != tt.want.After || !maps.Equal(sc.Stale.Channels, tt.want.Channels) {
			t.Errorf("MDB_STALE_AFTER=%q MDB_STALE_AFTER_CHANNELS=%q: stream Stale %+v, want %+v", tt.after, tt.channels, sc.Stale, tt.want)
		}
	}
}
