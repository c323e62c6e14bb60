package okx

import (
	"errors"
	"fmt"

	"github.com/qldata/mdbridge/bridge"
)

// ErrConfig: New was given an invalid Config.
var ErrConfig = errors.New("okx: invalid config")

// OKX codes the adapter acts on.
const (
	CodeRateLimit      = "50011" // REST: too many requests (with HTTP 200 or 429)
	CodeNotice         = "64008" // WS: the connection will be closed for a service upgrade
	CodeChannelMissing = "60018" // WS: wrong URL, channel or instrument
)

// APIError is an error answer from OKX: a REST response with a non-zero
// code or a non-2xx status, or a WebSocket error event (Status 0). It wraps
// bridge.ErrExchange.
type APIError struct {
	Status int    // HTTP status; 0 for a WebSocket reply
	Code   string // OKX code
	Msg    string // OKX msg
	Path   string // REST path, if any
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("okx: request refused: code %s: %s", e.Code, e.Msg)
	}
	return fmt.Sprintf("okx: %s: HTTP %d: code %s: %s", e.Path, e.Status, e.Code, e.Msg)
}

// Unwrap makes errors.Is(err, bridge.ErrExchange) true.
func (e *APIError) Unwrap() error { return bridge.ErrExchange }
