package node

import (
	"errors"
	"fmt"
)

// ErrStarted is returned by Start when the node has already been started
// (a Node runs once; build a new one to restart).
var ErrStarted = errors.New("node: already started")

// Stages of a SubscriptionError.
const (
	StageAdapter = "adapter" // building the exchange adapter (New)
	StageStream  = "stream"  // building the bridge.Stream (Start)
)

// SubscriptionError is a subscription the node cannot serve: its exchange
// adapter or its stream configuration is invalid. Callers map it back to
// their configuration (cmd/mdbridge names the MDB_* variables).
type SubscriptionError struct {
	Index    int    // into Config.Subscriptions
	Exchange string // Subscription.Exchange
	Stage    string // StageAdapter or StageStream
	Err      error
}

func (e *SubscriptionError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Exchange, e.Stage, e.Err)
}

func (e *SubscriptionError) Unwrap() error { return e.Err }
