package adapter

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/rest"
	"github.com/qldata/mdbridge/bridge/internal/symtab"
	"github.com/qldata/mdbridge/resilience"
)

// Core is the venue-independent state of an adapter. The zero value is
// set up with Init; a Core must not be copied after that.
type Core struct {
	Name    string                       // exchange id in subjects, msg IDs, logs and errors
	Limiter *resilience.RateLimitManager // paces the REST requests
	REST    rest.Client                  // sends them through Limiter
	Syms    symtab.Table                 // canonical symbols of the registered topics
	Log     *slog.Logger                 // the adapter's logger with "exchange"=Name
	Now     func() time.Time             // the clock (time.Now)
	restURL string
}

// Init sets c up for exchange name with the adapter's validated Config:
// it trims a trailing '/' from the base URLs (in the Config), takes lim or,
// when nil, builds a limiter from resilience.ExchangeDefaults(name)
// (requestsPerMinute when the table has no entry for name), and a REST
// client that sends through it and hands every response to check. log is
// the adapter's logger (nil discards).
// Errors: an invalid limiter configuration.
func (c *Core) Init(name string, cfg Common, lim *resilience.RateLimitManager, requestsPerMinute int, check rest.CheckFunc, log *slog.Logger) error {
	*cfg.WSURL = strings.TrimRight(*cfg.WSURL, "/")
	*cfg.RESTURL = strings.TrimRight(*cfg.RESTURL, "/")
	if lim == nil {
		d, ok := resilience.ExchangeDefaults(name)
		if !ok {
			d.RequestsPerMinute = requestsPerMinute
		}
		var err error
		if lim, err = resilience.NewRateLimitManager(d.RateLimitConfig()); err != nil {
			return err
		}
	}
	c.Name, c.Limiter, c.restURL, c.Now = name, lim, *cfg.RESTURL, time.Now
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c.Log = log.With("exchange", name)
	c.REST = rest.Client{
		HTTP:    *cfg.HTTPClient,
		Limiter: lim,
		Check:   check,
		MaxBody: *cfg.MaxBodyBytes,
		Now:     func() time.Time { return c.Now() },
		Log:     c.Log,
		Prefix:  name,
	}
	return nil
}

// Get sends GET <RESTURL><path>[?<q>] with the given limiter weight and
// returns the body the check function accepted (see rest.Client.Get).
func (c *Core) Get(ctx context.Context, path string, q url.Values, weight int) ([]byte, error) {
	u := c.restURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return c.REST.Get(ctx, u, weight)
}

// Malformed is the error for a REST response at path that cannot be used.
// It wraps bridge.ErrMalformed.
func (c *Core) Malformed(path string, err error) error {
	return fmt.Errorf("%w: %s: %s: %v", bridge.ErrMalformed, c.Name, path, err)
}

// Canonical returns symbol upper-cased, validated and interned. Errors
// wrap bridge.ErrBadIdent.
func (c *Core) Canonical(symbol string) (string, error) {
	s := strings.ToUpper(symbol)
	if err := bridge.ValidateIdent(s); err != nil {
		return "", fmt.Errorf("%s: %w", c.Name, err)
	}
	return c.Syms.Intern(s)
}

// Register returns the venue's name for each valid topic (stream name,
// topic arg) as name gives it, in order and without duplicates, and
// registers the topics' symbols for interning. Topics with an invalid
// symbol, or for which name returns "" (not exactly one known channel),
// are logged and skipped: the runner validates them at configuration time.
func (c *Core) Register(topics []bridge.Topic, name func(bridge.Topic) string) []string {
	out := make([]string, 0, len(topics))
	syms := make([]string, 0, len(topics))
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		if err := bridge.ValidateIdent(t.Symbol); err != nil {
			c.Log.Error("skipping topic with invalid symbol", "err", err)
			continue
		}
		n := name(t)
		if n == "" {
			c.Log.Error("skipping topic with invalid channel", "symbol", t.Symbol, "channel", t.Channel.String())
			continue
		}
		if seen[n] {
			continue // Bybit refuses a topic twice ("already subscribed")
		}
		seen[n] = true
		out = append(out, n)
		syms = append(syms, strings.ToUpper(t.Symbol))
	}
	c.Syms.Add(syms...)
	return out
}

// ConnectionsPerIP returns resilience.ExchangeDefaults(name)'s WebSocket
// connections per IP, or def when the table has none.
func ConnectionsPerIP(name string, def int) int {
	if d, ok := resilience.ExchangeDefaults(name); ok && d.WSConnectionsPerIP > 0 {
		return d.WSConnectionsPerIP
	}
	return def
}
