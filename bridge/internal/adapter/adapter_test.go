package adapter

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
)

type testConfig struct {
	WSURL, RESTURL              string
	MaxFrameBytes, MaxBodyBytes int64
	HTTPClient                  *http.Client
}

func (c *testConfig) common() Common {
	return Common{&c.WSURL, &c.RESTURL, &c.MaxFrameBytes, &c.MaxBodyBytes, &c.HTTPClient}
}

func TestCommon(t *testing.T) {
	d := Defaults{WSURL: "wss://ws.test/", RESTURL: "https://api.test", MaxFrameBytes: 4096, MaxBodyBytes: 8192}
	for _, c := range []struct {
		name  string
		cfg   testConfig
		field string // in the error; "" = valid
	}{
		{"zero value", testConfig{}, ""},
		{"ws path allowed", testConfig{WSURL: "ws://127.0.0.1:1/x"}, ""},
		{"https WS URL", testConfig{WSURL: "https://ws.test"}, "WSURL"},
		{"WS URL with query", testConfig{WSURL: "ws://127.0.0.1:1?x=1"}, "WSURL"},
		{"ws REST URL", testConfig{RESTURL: "ws://api.test"}, "RESTURL"},
		{"REST URL without host", testConfig{RESTURL: "http://"}, "RESTURL"},
		{"tiny frame limit", testConfig{MaxFrameBytes: 10}, "MaxFrameBytes"},
		{"tiny body limit", testConfig{MaxBodyBytes: 10}, "MaxBodyBytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.common().SetDefaults(d)
			if cfg.HTTPClient == nil || cfg.HTTPClient.Timeout != DefaultHTTPTimeout {
				t.Errorf("client %v", cfg.HTTPClient)
			}
			err := cfg.common().Validate()
			if c.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), c.field) {
				t.Errorf("err = %v, want one about %s", err, c.field)
			}
		})
	}
}

func TestCore(t *testing.T) {
	cfg := testConfig{}
	cfg.common().SetDefaults(Defaults{WSURL: "ws://ws.test/", RESTURL: "http://api.test//", MaxFrameBytes: 4096, MaxBodyBytes: 4096})
	var c Core
	if err := c.Init("binance", cfg.common(), nil, 1200, nil, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.WSURL != "ws://ws.test" || cfg.RESTURL != "http://api.test" || c.restURL != cfg.RESTURL {
		t.Errorf("URLs not trimmed: %q %q", cfg.WSURL, cfg.RESTURL)
	}
	if c.Limiter == nil || c.Name != "binance" || c.REST.Prefix != "binance" || c.REST.MaxBody != 4096 {
		t.Errorf("core: name %q, limiter %v, REST %+v", c.Name, c.Limiter, c.REST)
	}
	topics := []bridge.Topic{
		{Symbol: "btcusdt", Channel: bridge.ChannelTrade},
		{Symbol: "bad.sym", Channel: bridge.ChannelTrade},
		{Symbol: "ETHUSDT", Channel: bridge.ChannelBook},
		{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}, // same name: once
	}
	got := c.Register(topics, func(t bridge.Topic) string {
		if t.Channel != bridge.ChannelTrade {
			return ""
		}
		return strings.ToLower(t.Symbol) + "@trade"
	})
	if len(got) != 1 || got[0] != "btcusdt@trade" {
		t.Errorf("Register = %q", got)
	}
	if s, err := c.Canonical("btcusdt"); err != nil || s != "BTCUSDT" {
		t.Errorf("Canonical = %q, %v", s, err)
	}
	if _, err := c.Canonical("BTC.USDT"); !errors.Is(err, bridge.ErrBadIdent) || !strings.HasPrefix(err.Error(), "binance: ") {
		t.Errorf("Canonical(bad) err = %v", err)
	}
	if err := c.Malformed("/p", errors.New("x")); !errors.Is(err, bridge.ErrMalformed) {
		t.Errorf("Malformed = %v", err)
	}
	if n := ConnectionsPerIP("no-such-exchange", 7); n != 7 {
		t.Errorf("ConnectionsPerIP default = %d", n)
	}
}
