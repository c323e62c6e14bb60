package binance

import (
	"errors"
	"fmt"

	"github.com/qldata/mdbridge/bridge"
)

// ErrConfig: New was given an invalid Config.
var ErrConfig = errors.New("binance: invalid config")

// Binance error codes the adapter acts on.
const (
	CodeTooManyRequests = -1003 // request weight exceeded
	CodeUnauthorized    = -1002 // not authorized for this request
	CodeBadSymbol       = -1121 // invalid symbol
	CodeBadAPIKey       = -2014 // API-key format invalid
	CodeRejectedAPIKey  = -2015 // invalid API key, IP or permissions
	CodeNoAPIKey        = -2008 // invalid API-key ID
)

// APIError is an error answer from Binance: a REST error body
// {"code":-1121,"msg":"Invalid symbol."} (Status is the HTTP status; 5xx
// responses have Code 0 and mean the outcome is unknown), or a WebSocket
// control error {"error":{"code":2,"msg":"..."},"id":1} (Status 0). It wraps
// bridge.ErrExchange.
type APIError struct {
	Status int    // HTTP status; 0 for a WebSocket control reply
	Code   int    // Binance error code
	Msg    string // Binance error message
	Path   string // REST path, if any
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("binance: control request failed: code %d: %s", e.Code, e.Msg)
	}
	return fmt.Sprintf("binance: %s: HTTP %d: code %d: %s", e.Path, e.Status, e.Code, e.Msg)
}

// Unwrap makes errors.Is(err, bridge.ErrExchange) true.
func (e *APIError) Unwrap() error { return bridge.ErrExchange }
