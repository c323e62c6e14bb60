package adapter

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// DefaultHTTPTimeout is the timeout of the HTTP client an adapter uses when
// its Config has none.
const DefaultHTTPTimeout = 30 * time.Second

// MinLimitBytes is the smallest frame or body limit Validate accepts.
const MinLimitBytes = 1024

// Common points at the fields every adapter Config has, so that their
// defaults and checks are written once. Build it from the addresses of the
// adapter's Config fields.
type Common struct {
	WSURL, RESTURL              *string
	MaxFrameBytes, MaxBodyBytes *int64
	HTTPClient                  **http.Client
}

// Defaults are a venue's default values for the Common fields.
type Defaults struct {
	WSURL, RESTURL              string
	MaxFrameBytes, MaxBodyBytes int64
}

// SetDefaults gives every zero Common field its default: d's values, an
// HTTP client with DefaultHTTPTimeout.
func (c Common) SetDefaults(d Defaults) {
	*c.WSURL = cmp.Or(*c.WSURL, d.WSURL)
	*c.RESTURL = cmp.Or(*c.RESTURL, d.RESTURL)
	*c.MaxFrameBytes = cmp.Or(*c.MaxFrameBytes, d.MaxFrameBytes)
	*c.MaxBodyBytes = cmp.Or(*c.MaxBodyBytes, d.MaxBodyBytes)
	if *c.HTTPClient == nil {
		*c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
}

// Validate checks the Common fields once defaults are set: WSURL a ws or
// wss base URL, RESTURL an http or https one, both limits at least
// MinLimitBytes. The error names the field; the adapter wraps it with its
// ErrConfig.
func (c Common) Validate() error {
	if err := CheckBaseURL(*c.WSURL, "ws", "wss"); err != nil {
		return fmt.Errorf("WSURL: %w", err)
	}
	if err := CheckBaseURL(*c.RESTURL, "http", "https"); err != nil {
		return fmt.Errorf("RESTURL: %w", err)
	}
	if *c.MaxFrameBytes < MinLimitBytes {
		return fmt.Errorf("MaxFrameBytes %d below %d", *c.MaxFrameBytes, MinLimitBytes)
	}
	if *c.MaxBodyBytes < MinLimitBytes {
		return fmt.Errorf("MaxBodyBytes %d below %d", *c.MaxBodyBytes, MinLimitBytes)
	}
	return nil
}

// CheckBaseURL reports whether raw is a base URL: one of schemes, a host,
// no query or fragment (a path is allowed).
func CheckBaseURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return fmt.Errorf("%q: scheme must be %v", raw, schemes)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: base URL must not have a query or fragment", raw)
	}
	return nil
}
