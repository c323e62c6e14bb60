package cluster

import "errors"

var (
	// ErrConfig wraps configuration errors (Config.Validate).
	ErrConfig = errors.New("cluster: invalid configuration")
	// ErrBucket wraps a failure to create or open the membership bucket;
	// the message says what the NATS account must allow.
	ErrBucket = errors.New("cluster: membership bucket unavailable")
)
