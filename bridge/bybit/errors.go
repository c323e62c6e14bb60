package bybit

import (
	"errors"
	"fmt"

	"github.com/qldata/mdbridge/bridge"
)

// ErrConfig: New was given an invalid Config.
var ErrConfig = errors.New("bybit: invalid config")

// Bybit return codes the adapter acts on.
const (
	RetCodeTooManyVisits = 10006 // per-UID rate limit
)

// APIError is an error answer from Bybit: a REST response with a non-zero
// retCode or a non-2xx status (Status is the HTTP status; 5xx means the
// outcome is unknown), or a failed WebSocket control reply (Status 0, Op
// set). It wraps bridge.ErrExchange.
type APIError struct {
	Status  int    // HTTP status; 0 for a WebSocket reply
	RetCode int    // Bybit retCode (REST)
	RetMsg  string // Bybit retMsg / ret_msg
	Op      string // WebSocket op of a failed control reply
	Path    string // REST path, if any
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("bybit: %s failed: %s", e.Op, e.RetMsg)
	}
	return fmt.Sprintf("bybit: %s: HTTP %d: retCode %d: %s", e.Path, e.Status, e.RetCode, e.RetMsg)
}

// Unwrap makes errors.Is(err, bridge.ErrExchange) true.
func (e *APIError) Unwrap() error { return bridge.ErrExchange }
