package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// Member is one replica's entry in the membership bucket.
type Member struct {
	Instance   string    `json:"instance"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	Redundancy int       `json:"redundancy"`
	Units      int       `json:"units"`     // units it carries
	Releasing  int       `json:"releasing"` // lost units still running during handover
	Draining   bool      `json:"draining,omitempty"`
}

// MemberKey is the bucket key of an instance: its name with every
// character outside [A-Za-z0-9_-] replaced by '_'.
func MemberKey(instance string) string {
	b := []byte(instance)
	for i, c := range b {
		if !bridge.IsIdentChar(c) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// EnsureBucket creates or updates the membership bucket: one revision per
// key, TTL cfg.Expiry. A bucket that exists with another TTL (an earlier
// MDB_CLUSTER_EXPIRY) is updated to cfg.Expiry, with a warning on logger
// (nil = discard): replicas of different expiries sharing one bucket would
// otherwise expire each other's entries early or late. Errors wrap
// ErrConfig or ErrBucket; ErrBucket's say what to grant.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, cfg Config, logger *slog.Logger) (jetstream.KeyValue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if kv, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
		if st, err := kv.Status(ctx); err == nil && st.TTL() != cfg.Expiry {
			logger.Warn("cluster: membership bucket has another TTL; updating it to the configured expiry (replicas still running with the old MDB_CLUSTER_EXPIRY should be restarted with the new one)",
				"bucket", cfg.Bucket, "ttl", st.TTL(), "expiry", cfg.Expiry)
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "mdbridge replicas (membership for partitioned ingestion)",
		History:     1,
		TTL:         cfg.Expiry,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: KV bucket %q: %w (the NATS account needs JetStream, and the user permission to create and use the bucket: publish $JS.API.STREAM.CREATE.KV_%s, $JS.API.STREAM.UPDATE.KV_%s, $JS.API.STREAM.INFO.KV_%s, $JS.API.CONSUMER.> and $KV.%s.>, subscribe _INBOX.>; or create it beforehand with `nats kv add %s --history 1 --ttl %s`)",
			ErrBucket, cfg.Bucket, err, cfg.Bucket, cfg.Bucket, cfg.Bucket, cfg.Bucket, cfg.Bucket, cfg.Expiry)
	}
	return kv, nil
}

// MemberEntry is a Member as a reader sees it.
type MemberEntry struct {
	Member
	// Age is now - Updated (by the reader's clock).
	Age time.Duration
}

// ReadMembers returns the entries of the membership bucket sorted by
// instance. Entries older than the bucket TTL are already gone; a reader
// should treat an entry with Age > Expiry as a member about to expire.
func ReadMembers(ctx context.Context, kv jetstream.KeyValue) ([]MemberEntry, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("cluster: read members: %w", err)
	}
	defer w.Stop()
	var out []MemberEntry
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: read members: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("cluster: read members: watcher closed")
			}
			if e == nil {
				slices.SortFunc(out, func(a, b MemberEntry) int { return strings.Compare(a.Instance, b.Instance) })
				return out, nil
			}
			var m Member
			if json.Unmarshal(e.Value(), &m) != nil || m.Instance == "" {
				continue
			}
			out = append(out, MemberEntry{Member: m, Age: time.Since(m.Updated)})
		}
	}
}
