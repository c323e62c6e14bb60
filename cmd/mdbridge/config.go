package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/cli"
	"github.com/qldata/mdbridge/resilience"
)

// envPrefix is the prefix of every configuration variable.
const envPrefix = "MDB"

// Config is the whole configuration of `mdbridge run`, read from MDB_*
// environment variables. `mdbridge -h` prints it with defaults.
type Config struct {
	Subscribe       string        `envconfig:"SUBSCRIBE" default:"binance:trade,book:BTCUSDT" desc:"what to ingest at start: <exchange>:<trade,book>:<SYMBOL,...>[;...]; exchanges binance, bybit, bybit-linear, okx, okx-swap, binance-usdm; the runtime spec in MDB_CONFIG_BUCKET, when present, replaces it"`
	ConfigBucket    string        `envconfig:"CONFIG_BUCKET" default:"md_config" desc:"KV bucket of runtime subscriptions: key subscribe holds a spec in MDB_SUBSCRIBE's syntax that, when present, replaces MDB_SUBSCRIBE on every replica at once (mdbridge subscribe show|set|add|remove); empty turns runtime subscriptions off"`
	UniverseRefresh time.Duration `envconfig:"UNIVERSE_REFRESH" default:"5m" desc:"how often the instrument lists behind universe patterns (binance:trade:*USDT) are read again: new listings start, delisted or halted symbols are released; at least 10s"`
	Instance        string        `envconfig:"INSTANCE" desc:"instance name in md_state keys and logs (default: host name)"`

	NATSURL       string        `envconfig:"NATS_URL" desc:"NATS server URL(s), comma separated; empty starts an embedded NATS server"`
	NATSUser      string        `envconfig:"NATS_USER" desc:"NATS user name"`
	NATSPassword  Secret        `envconfig:"NATS_PASSWORD" desc:"NATS password"`
	NATSToken     Secret        `envconfig:"NATS_TOKEN" desc:"NATS token"`
	NATSNKeyFile  string        `envconfig:"NATS_NKEY_FILE" desc:"path of an NKey seed file"`
	NATSCredsFile string        `envconfig:"NATS_CREDS_FILE" desc:"path of a NATS .creds file (JWT + NKey)"`
	NATSTLSCA     string        `envconfig:"NATS_TLS_CA" desc:"PEM file of CAs to verify the NATS server"`
	NATSTLSCert   string        `envconfig:"NATS_TLS_CERT" desc:"PEM client certificate for NATS mutual TLS"`
	NATSTLSKey    string        `envconfig:"NATS_TLS_KEY" desc:"PEM client key for NATS mutual TLS"`
	NATSName      string        `envconfig:"NATS_NAME" default:"mdbridge" desc:"NATS client connection name"`
	ConnectWait   time.Duration `envconfig:"NATS_CONNECT_TIMEOUT" default:"10s" desc:"how long to try reaching NATS at start before exiting"`

	EmbeddedListen string `envconfig:"EMBEDDED_LISTEN" default:"127.0.0.1:4222" desc:"listen address of the embedded NATS server (used when MDB_NATS_URL is empty)"`
	DataDir        string `envconfig:"DATA_DIR" default:"./data" desc:"JetStream store directory of the embedded NATS server"`

	Stream          string        `envconfig:"STREAM" default:"MD" desc:"JetStream stream name"`
	SubjectPrefix   string        `envconfig:"SUBJECT_PREFIX" default:"md" desc:"data subject prefix: <prefix>.<exchange>.<symbol>"`
	StreamReplicas  int           `envconfig:"STREAM_REPLICAS" default:"1" desc:"stream replicas (1, 3 or 5)"`
	StreamStorage   string        `envconfig:"STREAM_STORAGE" default:"file" desc:"stream storage: file or memory"`
	DuplicateWindow time.Duration `envconfig:"DUPLICATE_WINDOW" default:"2m" desc:"JetStream duplicate window (msg-ID dedup)"`
	MaxAge          time.Duration `envconfig:"MAX_AGE" default:"24h" desc:"stream max message age"`
	MaxBytes        int64         `envconfig:"MAX_BYTES" default:"10737418240" desc:"stream size limit in bytes (default 10 GiB; the oldest messages are discarded first); 0 or -1 = unlimited"`
	KVBucket        string        `envconfig:"KV_BUCKET" default:"md_state" desc:"KV bucket for connection state"`
	ControlPrefix   string        `envconfig:"CONTROL_PREFIX" default:"mdctl" desc:"control subject prefix: <prefix>.snapshot.<exchange>.<symbol>"`

	BufferMessages int    `envconfig:"BUFFER_MESSAGES" default:"200000" desc:"publish buffer size in messages (absorbs NATS outages)"`
	BufferBytes    int64  `envconfig:"BUFFER_BYTES" default:"268435456" desc:"publish buffer size in bytes"`
	BufferPolicy   string `envconfig:"BUFFER_POLICY" default:"block" desc:"when the buffer is full: block (backpressure) or drop-oldest (counted)"`

	BinanceWSURL   string `envconfig:"BINANCE_WS_URL" default:"wss://stream.binance.com:9443" desc:"Binance Spot WebSocket base URL"`
	BinanceRESTURL string `envconfig:"BINANCE_REST_URL" default:"https://api.binance.com" desc:"Binance Spot REST base URL"`
	BybitWSURL     string `envconfig:"BYBIT_WS_URL" default:"wss://stream.bybit.com" desc:"Bybit v5 WebSocket base URL (/v5/public/<market> is appended)"`
	BybitRESTURL   string `envconfig:"BYBIT_REST_URL" default:"https://api.bybit.com" desc:"Bybit v5 REST base URL"`
	USDMWSURL      string `envconfig:"BINANCE_USDM_WS_URL" default:"wss://fstream.binance.com" desc:"Binance USD-M futures WebSocket base URL (/public/stream and /market/stream are appended)"`
	USDMRESTURL    string `envconfig:"BINANCE_USDM_REST_URL" default:"https://fapi.binance.com" desc:"Binance USD-M futures REST base URL"`
	OKXWSURL       string `envconfig:"OKX_WS_URL" default:"wss://ws.okx.com:8443" desc:"OKX v5 WebSocket base URL (/ws/v5/public and /ws/v5/business are appended); okx and okx-swap"`
	OKXRESTURL     string `envconfig:"OKX_REST_URL" default:"https://openapi.okx.com" desc:"OKX v5 REST base URL; okx and okx-swap"`

	BinanceBookDepth    int `envconfig:"BINANCE_BOOK_DEPTH" default:"1000" desc:"Binance REST snapshot depth (1-5000; weight 5 up to 100, 25 up to 500, 50 up to 1000, 250 above)"`
	BinanceWeightPerMin int `envconfig:"BINANCE_WEIGHT_PER_MINUTE" default:"1200" desc:"Binance REST weight budget per minute per IP (the seed's 1200; Binance allows 6000 today): bounds snapshot and backfill bursts"`
	USDMBookDepth       int `envconfig:"BINANCE_USDM_BOOK_DEPTH" default:"1000" desc:"Binance USD-M REST snapshot depth (5, 10, 20, 50, 100, 500 or 1000; weight 2, 5 at 100, 10 at 500, 20 at 1000)"`
	USDMWeightPerMin    int `envconfig:"BINANCE_USDM_WEIGHT_PER_MINUTE" default:"2400" desc:"Binance USD-M REST weight budget per minute per IP (fapi's REQUEST_WEIGHT 2400)"`
	// USDMOpenInterestEvery: 0 switches the poll off.
	USDMOpenInterestEvery time.Duration `envconfig:"BINANCE_USDM_OPEN_INTEREST_EVERY" default:"1m" desc:"how often a binance-usdm ticker polls each symbol's open interest (/fapi/v1/openInterest, weight 1 per symbol); 0 = off (no open interest in its tickers)"`
	BybitBookDepth        int           `envconfig:"BYBIT_BOOK_DEPTH" default:"50" desc:"Bybit orderbook depth (1, 50, 200 or 1000)"`
	BybitRequestsPerMin   int           `envconfig:"BYBIT_REQUESTS_PER_MINUTE" default:"120" desc:"Bybit REST requests per minute per IP (the seed's 120)"`

	HTTPAddr         string        `envconfig:"HTTP_ADDR" default:":8080" desc:"listen address of /healthz, /readyz and /metrics; empty disables"`
	LogLevel         string        `envconfig:"LOG_LEVEL" default:"info" desc:"log level: debug, info, warn, error"`
	LogFormat        string        `envconfig:"LOG_FORMAT" default:"text" desc:"log format: text or json"`
	ReadyGrace       time.Duration `envconfig:"READY_GRACE" default:"30s" desc:"how long after start /readyz tolerates subscriptions not yet connected"`
	ShutdownTimeout  time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"20s" desc:"bound on flushing acks and writing final state at shutdown"`
	StaleAfter       time.Duration `envconfig:"STALE_AFTER" default:"1m" desc:"a symbol's channel with no message for this long is stale (md_state, mdbridge_data_stale, status; logged once per edge); must be positive"`
	StaleChannels    string        `envconfig:"STALE_AFTER_CHANNELS" desc:"per-channel stale thresholds overriding MDB_STALE_AFTER, e.g. book=30s,trade=5m (quiet symbols may trade rarely)"`
	SilenceCheck     time.Duration `envconfig:"SILENCE_CHECK" default:"1m" desc:"a connection with no data for this long (pings still answered) is checked against the venue's REST data and replaced if it missed any (silent feed); 0 disables, else at least 5s"`
	TimeSyncInterval time.Duration `envconfig:"TIME_SYNC_INTERVAL" default:"5m" desc:"how often each stream measures the exchange clock's offset (REST server time); an offset of 1s or more is logged at WARN at every measurement; at least 10s"`

	Cluster          bool          `envconfig:"CLUSTER" default:"false" desc:"partition the subscriptions over the replicas sharing the NATS server (membership in KV bucket MDB_MEMBERS_BUCKET); false: every replica carries everything"`
	Redundancy       string        `envconfig:"REDUNDANCY" default:"2" desc:"with MDB_CLUSTER: replicas carrying each (exchange, symbol); 1 = no redundancy; at least the number of replicas = every replica carries everything"`
	MembersBucket    string        `envconfig:"MEMBERS_BUCKET" default:"md_members" desc:"with MDB_CLUSTER: KV bucket of the replicas' membership"`
	HandoverTimeout  time.Duration `envconfig:"HANDOVER_TIMEOUT" default:"30s" desc:"with MDB_CLUSTER: how long a replica keeps a unit it lost while its new owners are not CONNECTED"`
	ClusterHeartbeat time.Duration `envconfig:"CLUSTER_HEARTBEAT" default:"1s" desc:"with MDB_CLUSTER: how often a replica rewrites its membership entry; at least 100ms"`
	ClusterExpiry    time.Duration `envconfig:"CLUSTER_EXPIRY" default:"3s" desc:"with MDB_CLUSTER: how long a silent replica stays a member (the membership bucket's TTL; a dead replica's units move after about expiry + heartbeat); at least 1s and twice MDB_CLUSTER_HEARTBEAT"`
	IPShare          int           `envconfig:"IP_SHARE" default:"1" desc:"replicas sharing one egress IP: each uses 1/MDB_IP_SHARE of every per-IP limit: the REST budgets (MDB_BINANCE_WEIGHT_PER_MINUTE, MDB_BYBIT_REQUESTS_PER_MINUTE, the binance-usdm budget and live limit, the OKX budget), the venue connection attempts per window and connections per IP"`

	// Resilience knobs of every stream: MDB_RESILIENCE_AUTO_RECONNECT,
	// MDB_RESILIENCE_RECONNECT_DELAY_MAX, ...
	Resilience resilience.ResilienceConfig `envconfig:"RESILIENCE"`

	subs       []Subscription
	redundancy int                              // parsed MDB_REDUNDANCY
	stale      map[bridge.Channel]time.Duration // parsed StaleChannels
}

// minHeartbeat is the shortest MDB_RESILIENCE_HEARTBEAT_INTERVAL: the
// bridge pings at a fraction of it, and 0 would mean "dead at once" to a
// reader while the library would silently take its 30s default.
const minHeartbeat = time.Second

// Secret is a configuration string that never appears in logs or errors.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the secret's value for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// loadConfig reads and validates the configuration from the environment.
func loadConfig() (*Config, error) {
	var c Config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		// envconfig names the variable in its error (e.g. MDB_MAX_AGE).
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// configError names the offending variable and what it allows.
func configError(name, format string, args ...any) error {
	return fmt.Errorf("configuration: %s_%s: %s", envPrefix, name, fmt.Sprintf(format, args...))
}

func (c *Config) validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.Resilience.Validate(); err != nil {
		add(fmt.Errorf("configuration: %w", err))
	}
	if hb := c.Resilience.HeartbeatInterval; hb < minHeartbeat {
		add(configError("RESILIENCE_HEARTBEAT_INTERVAL", "%s is below the minimum %s; use a Go duration such as 30s (the default) or 10s", hb, minHeartbeat))
	}
	subs, err := ParseSubscriptions(c.Subscribe)
	if err != nil {
		add(configError("SUBSCRIBE", "%v", err))
	}
	c.subs = subs
	if c.Instance == "" {
		c.Instance = bridge.HostIdent()
	} else if err := bridge.ValidateIdent(c.Instance); err != nil {
		add(configError("INSTANCE", "%v", err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"NATS_CONNECT_TIMEOUT", c.ConnectWait, time.Second},
		{"DUPLICATE_WINDOW", c.DuplicateWindow, time.Second},
		{"MAX_AGE", c.MaxAge, 0},
		{"READY_GRACE", c.ReadyGrace, 0},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout, time.Second},
		{"SILENCE_CHECK", c.SilenceCheck, 0},
		{"TIME_SYNC_INTERVAL", c.TimeSyncInterval, 10 * time.Second},
		{"UNIVERSE_REFRESH", c.UniverseRefresh, 10 * time.Second},
	} {
		if d.v < d.min {
			add(configError(d.name, "%s is below the minimum %s; use a Go duration such as 30s or 2m", d.v, d.min))
		}
	}
	if c.SilenceCheck > 0 && c.SilenceCheck < 5*time.Second {
		add(configError("SILENCE_CHECK", "%s; allowed: 0 (off) or at least 5s, e.g. 1m", c.SilenceCheck))
	}
	if c.StaleAfter <= 0 {
		add(configError("STALE_AFTER", "%s; must be positive, e.g. 1m (the default) or 30s", c.StaleAfter))
	}
	if c.stale, err = parseStaleChannels(c.StaleChannels); err != nil {
		add(configError("STALE_AFTER_CHANNELS", "%v", err))
	}
	if c.MaxBytes < -1 || (c.MaxBytes > 0 && c.MaxBytes < 1<<20) {
		add(configError("MAX_BYTES", "%d; allowed: a size in bytes of at least 1048576 (1 MiB), or 0 or -1 for unlimited", c.MaxBytes))
	}
	if c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge {
		add(configError("DUPLICATE_WINDOW", "%s is longer than MDB_MAX_AGE %s", c.DuplicateWindow, c.MaxAge))
	}
	for _, id := range []struct{ name, v string }{
		{"STREAM", c.Stream}, {"SUBJECT_PREFIX", c.SubjectPrefix},
		{"KV_BUCKET", c.KVBucket}, {"CONTROL_PREFIX", c.ControlPrefix},
	} {
		if err := bridge.ValidateIdent(id.v); err != nil {
			add(configError(id.name, "%v", err))
		}
	}
	if c.SubjectPrefix == c.ControlPrefix {
		add(configError("CONTROL_PREFIX", "must differ from MDB_SUBJECT_PREFIX (%q): control requests must not land in the data stream", c.SubjectPrefix))
	}
	switch c.StreamReplicas {
	case 1, 3, 5:
	default:
		add(configError("STREAM_REPLICAS", "%d; allowed: 1, 3, 5", c.StreamReplicas))
	}
	switch c.StreamStorage {
	case "file", "memory":
	default:
		add(configError("STREAM_STORAGE", "%q; allowed: file, memory", c.StreamStorage))
	}
	if c.BufferMessages < 1 {
		add(configError("BUFFER_MESSAGES", "%d; must be at least 1", c.BufferMessages))
	}
	if c.BufferBytes < 1<<20 {
		add(configError("BUFFER_BYTES", "%d; must be at least 1048576 (1 MiB)", c.BufferBytes))
	}
	switch c.BufferPolicy {
	case "block", "drop-oldest":
	default:
		add(configError("BUFFER_POLICY", "%q; allowed: block, drop-oldest", c.BufferPolicy))
	}
	for _, u := range []struct {
		name, v string
		schemes []string
	}{
		{"BINANCE_WS_URL", c.BinanceWSURL, []string{"ws", "wss"}},
		{"BYBIT_WS_URL", c.BybitWSURL, []string{"ws", "wss"}},
		{"BINANCE_USDM_WS_URL", c.USDMWSURL, []string{"ws", "wss"}},
		{"BINANCE_USDM_REST_URL", c.USDMRESTURL, []string{"http", "https"}},
		{"BINANCE_REST_URL", c.BinanceRESTURL, []string{"http", "https"}},
		{"BYBIT_REST_URL", c.BybitRESTURL, []string{"http", "https"}},
		{"OKX_WS_URL", c.OKXWSURL, []string{"ws", "wss"}},
		{"OKX_REST_URL", c.OKXRESTURL, []string{"http", "https"}},
	} {
		add(checkURL(u.name, u.v, u.schemes...))
	}
	if c.NATSURL != "" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			add(checkURL("NATS_URL", strings.TrimSpace(u), "nats", "tls", "ws", "wss"))
		}
	} else if _, _, err := net.SplitHostPort(c.EmbeddedListen); err != nil {
		add(configError("EMBEDDED_LISTEN", "%q is not host:port", c.EmbeddedListen))
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			add(configError("HTTP_ADDR", "%q is not [host]:port", c.HTTPAddr))
		}
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		add(configError("NATS_TLS_CERT", "MDB_NATS_TLS_CERT and MDB_NATS_TLS_KEY must be set together"))
	}
	for _, f := range []struct{ name, v string }{
		{"NATS_NKEY_FILE", c.NATSNKeyFile}, {"NATS_CREDS_FILE", c.NATSCredsFile},
		{"NATS_TLS_CA", c.NATSTLSCA}, {"NATS_TLS_CERT", c.NATSTLSCert}, {"NATS_TLS_KEY", c.NATSTLSKey},
	} {
		if f.v == "" {
			continue
		}
		if _, err := os.Stat(f.v); err != nil {
			add(configError(f.name, "cannot read %q: %v", f.v, errors.Unwrap(err)))
		}
	}
	if c.BinanceBookDepth < 1 || c.BinanceBookDepth > 5000 {
		add(configError("BINANCE_BOOK_DEPTH", "%d; allowed: 1 to 5000", c.BinanceBookDepth))
	}
	switch c.BybitBookDepth {
	case 1, 50, 200, 1000:
	default:
		add(configError("BYBIT_BOOK_DEPTH", "%d; allowed: 1, 50, 200, 1000", c.BybitBookDepth))
	}
	switch c.USDMBookDepth {
	case 5, 10, 20, 50, 100, 500, 1000:
	default:
		add(configError("BINANCE_USDM_BOOK_DEPTH", "%d; allowed: 5, 10, 20, 50, 100, 500, 1000", c.USDMBookDepth))
	}
	if c.USDMOpenInterestEvery < 0 {
		add(configError("BINANCE_USDM_OPEN_INTEREST_EVERY", "%s; allowed: a duration of at least 0 (0 = off)", c.USDMOpenInterestEvery))
	}
	if c.USDMWeightPerMin < 1 {
		add(configError("BINANCE_USDM_WEIGHT_PER_MINUTE", "%d; must be at least 1", c.USDMWeightPerMin))
	}
	if c.BinanceWeightPerMin < 1 {
		add(configError("BINANCE_WEIGHT_PER_MINUTE", "%d; must be at least 1", c.BinanceWeightPerMin))
	}
	if c.BybitRequestsPerMin < 1 {
		add(configError("BYBIT_REQUESTS_PER_MINUTE", "%d; must be at least 1", c.BybitRequestsPerMin))
	}
	add(c.validateCluster())
	if c.ConfigBucket != "" {
		if err := bridge.ValidateIdent(c.ConfigBucket); err != nil {
			add(configError("CONFIG_BUCKET", "%v", err))
		} else if c.ConfigBucket == c.KVBucket || c.ConfigBucket == c.MembersBucket {
			add(configError("CONFIG_BUCKET", "%q must differ from MDB_KV_BUCKET and MDB_MEMBERS_BUCKET", c.ConfigBucket))
		}
	}
	if _, err := cli.ParseLevel(c.LogLevel); err != nil {
		add(configError("LOG_LEVEL", "%v", err))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		add(configError("LOG_FORMAT", "%q; allowed: text, json", c.LogFormat))
	}
	return errors.Join(errs...)
}

func checkURL(name, v string, schemes ...string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return configError(name, "%q is not a URL; e.g. %s://host:port", v, schemes[0])
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return configError(name, "scheme %q; allowed: %s", u.Scheme, strings.Join(schemes, ", "))
}
