package cluster

import (
	"cmp"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultBucket          = "md_members"
	DefaultRedundancy      = 2
	DefaultHeartbeat       = time.Second
	DefaultExpiry          = 3 * DefaultHeartbeat
	DefaultHandoverTimeout = 30 * time.Second
	DefaultTick            = 500 * time.Millisecond
)

// Config configures a Coordinator. The zero value of every field but
// Instance and Units is valid.
type Config struct {
	// Instance is this replica's name, as in md_state entries.
	Instance string
	// Redundancy is R, the number of replicas that carry each unit
	// (default 2; 1 = no redundancy; R ≥ the number of members = every
	// replica carries every unit).
	Redundancy int
	// Units is the work to spread.
	Units []Unit
	// Bucket is the membership KV bucket (default md_members).
	Bucket string
	// Heartbeat is how often the replica rewrites its membership entry
	// (default 1 s).
	Heartbeat time.Duration
	// Expiry is how long a member may go without rewriting its entry
	// before the others consider it gone; it is also the bucket's TTL
	// (default 3 × Heartbeat; at least 2 × Heartbeat and 1 s).
	Expiry time.Duration
	// HandoverTimeout bounds how long a lost unit keeps running while its
	// new owners are not CONNECTED in md_state (default 30 s).
	HandoverTimeout time.Duration
	// Tick is the reconcile period (default 500 ms): expiries and
	// handovers are checked at least this often.
	Tick time.Duration
	// StaleAfter is the md_state entry age after which an owner's CONNECTED
	// no longer counts (the state writer's StaleAfter; default 15 s).
	StaleAfter time.Duration
	// Storage and Replicas of the membership bucket (default file, 1).
	Storage  jetstream.StorageType
	Replicas int
	// Conn, if set, is the connection the buckets use: on each reconnect
	// the membership and md_state watches are set up again at once (the
	// ordered consumer behind a watch otherwise stays silent until it
	// misses heartbeats, about 12 s). Without it they are set up again
	// only when they end.
	Conn *nats.Conn
}

func (c Config) withDefaults() Config {
	c.Redundancy = cmp.Or(c.Redundancy, DefaultRedundancy)
	c.Bucket = cmp.Or(c.Bucket, DefaultBucket)
	c.Heartbeat = cmp.Or(c.Heartbeat, DefaultHeartbeat)
	c.Expiry = cmp.Or(c.Expiry, 3*c.Heartbeat)
	c.HandoverTimeout = cmp.Or(c.HandoverTimeout, DefaultHandoverTimeout)
	c.Tick = cmp.Or(c.Tick, DefaultTick)
	c.StaleAfter = cmp.Or(c.StaleAfter, 15*time.Second)
	c.Replicas = cmp.Or(c.Replicas, 1)
	return c
}

// Validate checks the configuration. Errors wrap ErrConfig.
func (c Config) Validate() error {
	if c.Instance == "" {
		return fmt.Errorf("%w: an instance name is required", ErrConfig)
	}
	if c.Redundancy < 0 {
		return fmt.Errorf("%w: redundancy %d: use 1 or more (0 = default %d)", ErrConfig, c.Redundancy, DefaultRedundancy)
	}
	if c.Heartbeat < 0 || c.Expiry < 0 || c.HandoverTimeout < 0 || c.Tick < 0 || c.StaleAfter < 0 {
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	d := c.withDefaults()
	if d.Expiry < 2*d.Heartbeat {
		return fmt.Errorf("%w: expiry %s is below twice the heartbeat %s", ErrConfig, d.Expiry, d.Heartbeat)
	}
	if d.Expiry < time.Second {
		return fmt.Errorf("%w: expiry %s: at least 1s (the KV bucket TTL)", ErrConfig, d.Expiry)
	}
	return nil
}
