package publisher

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// DropPolicy says what Publish does when the buffer is full.
type DropPolicy uint8

const (
	// Block applies backpressure: Publish waits until there is room or its
	// context ends. Nothing is dropped. The default.
	Block DropPolicy = iota
	// DropOldest discards the oldest buffered message that is not in flight
	// (awaiting an ack) to make room; if every other message is in flight,
	// the new one is dropped. Publish never waits. Every drop is counted in
	// Stats.Dropped and logged (rate-limited).
	DropOldest
)

// String returns "block" or "drop-oldest".
func (d DropPolicy) String() string {
	switch d {
	case Block:
		return "block"
	case DropOldest:
		return "drop-oldest"
	}
	return fmt.Sprintf("DropPolicy(%d)", d)
}

// ParseDropPolicy parses "block" or "drop-oldest" (also "drop_oldest").
func ParseDropPolicy(s string) (DropPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "block":
		return Block, nil
	case "drop-oldest", "drop_oldest", "dropoldest":
		return DropOldest, nil
	}
	return Block, fmt.Errorf("%w: drop policy %q: want block or drop-oldest", ErrConfig, s)
}

// ParseStorage parses "file" or "memory" into a JetStream storage type.
func ParseStorage(s string) (jetstream.StorageType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "file":
		return jetstream.FileStorage, nil
	case "memory", "mem":
		return jetstream.MemoryStorage, nil
	}
	return jetstream.FileStorage, fmt.Errorf("%w: storage %q: want file or memory", ErrConfig, s)
}

// Defaults of Config (DESIGN.md).
const (
	DefaultStream          = "MD"
	DefaultSubjectPrefix   = "md"
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultMaxAge          = 24 * time.Hour
	DefaultReplicas        = 1
	DefaultKVBucket        = "md_state"
	DefaultStateTTL        = time.Hour
	DefaultStateRefresh    = 5 * time.Second
	DefaultStaleAfter      = 3 * DefaultStateRefresh
	DefaultControlPrefix   = "mdctl"
	DefaultBufferMessages  = 200_000
	DefaultBufferBytes     = 256 << 20
	DefaultMaxInFlight     = 4096
	DefaultAckTimeout      = 5 * time.Second

	DefaultSnapshotConcurrency = 4
	DefaultSnapshotRate        = 20.0
	DefaultSnapshotBurst       = 40
	DefaultSnapshotMaxWaiters  = 1024
	DefaultSnapshotTimeout     = 10 * time.Second
	DefaultRequestTimeout      = 15 * time.Second

	// QueueGroup is the queue group every replica's snapshot service joins.
	QueueGroup = "mdbridge"
	// MaxRequestBody is the largest snapshot request body accepted.
	MaxRequestBody = 4 << 10
)

// DefaultMaxBytes is the stream size limit `mdbridge run` applies
// (MDB_MAX_BYTES). Config.MaxBytes 0 does not apply it: a stream's MaxBytes
// is reserved from the server's JetStream storage, so as the library's
// default it would make stream creation fail on servers with less free
// storage.
const DefaultMaxBytes = 10 << 30

// Config configures stream provisioning, publishing, the state bucket and
// the snapshot control service. The zero value is the DESIGN.md default:
// stream MD on md.>, file storage, duplicate window 2 min, max age 24 h, one
// replica, discard old; KV bucket md_state; control prefix mdctl; a buffer of
// 200 000 messages / 256 MiB with Block policy; 4096 publishes in flight;
// 5 s ack timeout.
type Config struct {
	// Stream is the JetStream stream name. Default "MD".
	Stream string
	// SubjectPrefix is the first token(s) of data subjects
	// <prefix>.<exchange>.<symbol>; the stream binds "<prefix>.>". Default "md".
	SubjectPrefix string
	// Storage of the stream and of the KV bucket. Zero is file storage.
	Storage jetstream.StorageType
	// Replicas of the stream and the KV bucket (1..5). Default 1.
	Replicas int
	// DuplicateWindow is the stream's msg-ID dedup window. Default 2 min.
	DuplicateWindow time.Duration
	// MaxAge is the stream's message age limit. Default 24 h.
	MaxAge time.Duration
	// MaxBytes limits the stream size in bytes (with Discard old, the
	// oldest messages go first). -1 means unlimited, and EnsureStream
	// removes a limit set on the stream; 0 leaves the stream's limit as it
	// is (none on a new stream). JetStream reserves a positive limit from
	// the server's storage at creation.
	MaxBytes int64
	// Discard is the stream's discard policy. Zero is DiscardOld.
	Discard jetstream.DiscardPolicy

	// KVBucket is the connection-state bucket. Default "md_state".
	KVBucket string
	// StateTTL is the bucket's TTL: an entry not rewritten for this long
	// disappears. Default 1 h, so a dead instance's entries stay visible (and
	// stale) for an hour.
	StateTTL time.Duration
	// StateRefresh is how often the state writer rewrites every key with a
	// fresh "updated". Default 5 s.
	StateRefresh time.Duration
	// StaleAfter is the "updated" age after which a reader reports an entry
	// stale. Default 3 × StateRefresh.
	StaleAfter time.Duration

	// ControlPrefix is the first token(s) of the control subjects
	// <prefix>.snapshot.<exchange>.<symbol>. Default "mdctl".
	ControlPrefix string

	// BufferMessages bounds the messages held until acknowledged. Default 200 000.
	BufferMessages int
	// BufferBytes bounds the bytes held until acknowledged. Default 256 MiB.
	// A single message larger than this is accepted into an empty buffer.
	BufferBytes int64
	// DropPolicy applies when the buffer is full. Zero is Block.
	DropPolicy DropPolicy
	// MaxInFlight bounds the publishes awaiting an ack. Default 4096; at most
	// BufferMessages.
	MaxInFlight int
	// AckTimeout is how long a publish may wait for its ack before it is
	// treated as failed and retried. Default 5 s.
	AckTimeout time.Duration

	// SnapshotConcurrency bounds concurrent snapshot fetches. Default 4.
	SnapshotConcurrency int
	// SnapshotRate is the sustained rate of new snapshot fetches per second
	// for the whole service (the pace of its FIFO queue); SnapshotBurst its
	// burst. Defaults 20/s, 40 (internal/node derives them from the venues'
	// REST budgets).
	SnapshotRate  float64
	SnapshotBurst int
	// SnapshotMaxWaiters bounds requests queued or waiting for a running
	// fetch; beyond it a request is refused "busy". Default 1024.
	SnapshotMaxWaiters int
	// SnapshotTimeout bounds one fetch plus its publish, from the moment
	// the fetch leaves the queue. Default 10 s.
	SnapshotTimeout time.Duration
	// RequestTimeout bounds SnapshotRequester.RequestSnapshot when its
	// context has no earlier deadline. Default 15 s.
	RequestTimeout time.Duration
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	c.Stream = cmp.Or(c.Stream, DefaultStream)
	c.SubjectPrefix = cmp.Or(c.SubjectPrefix, DefaultSubjectPrefix)
	c.KVBucket = cmp.Or(c.KVBucket, DefaultKVBucket)
	c.ControlPrefix = cmp.Or(c.ControlPrefix, DefaultControlPrefix)
	c.Replicas = cmp.Or(c.Replicas, DefaultReplicas)
	c.DuplicateWindow = cmp.Or(c.DuplicateWindow, DefaultDuplicateWindow)
	c.MaxAge = cmp.Or(c.MaxAge, DefaultMaxAge)
	c.StateTTL = cmp.Or(c.StateTTL, DefaultStateTTL)
	c.StateRefresh = cmp.Or(c.StateRefresh, DefaultStateRefresh)
	c.StaleAfter = cmp.Or(c.StaleAfter, 3*c.StateRefresh)
	c.BufferMessages = cmp.Or(c.BufferMessages, DefaultBufferMessages)
	c.BufferBytes = cmp.Or(c.BufferBytes, DefaultBufferBytes)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, min(DefaultMaxInFlight, c.BufferMessages))
	c.AckTimeout = cmp.Or(c.AckTimeout, DefaultAckTimeout)
	c.SnapshotConcurrency = cmp.Or(c.SnapshotConcurrency, DefaultSnapshotConcurrency)
	c.SnapshotRate = cmp.Or(c.SnapshotRate, DefaultSnapshotRate)
	c.SnapshotBurst = cmp.Or(c.SnapshotBurst, DefaultSnapshotBurst)
	c.SnapshotMaxWaiters = cmp.Or(c.SnapshotMaxWaiters, DefaultSnapshotMaxWaiters)
	c.SnapshotTimeout = cmp.Or(c.SnapshotTimeout, DefaultSnapshotTimeout)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	return c
}

// Validate reports every invalid field, naming it. Zero fields are valid
// (they take their defaults).
func (c Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: Config.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...)))
	}
	if err := checkName(d.Stream); err != nil {
		bad("Stream", "%v", err)
	}
	if err := checkSubjectPrefix(d.SubjectPrefix); err != nil {
		bad("SubjectPrefix", "%v", err)
	}
	if err := checkSubjectPrefix(d.ControlPrefix); err != nil {
		bad("ControlPrefix", "%v", err)
	}
	if err := checkName(d.KVBucket); err != nil {
		bad("KVBucket", "%v", err)
	}
	if d.Storage != jetstream.FileStorage && d.Storage != jetstream.MemoryStorage {
		bad("Storage", "unknown storage type %d", d.Storage)
	}
	if d.Discard != jetstream.DiscardOld && d.Discard != jetstream.DiscardNew {
		bad("Discard", "unknown discard policy %d", d.Discard)
	}
	if d.Replicas < 1 || d.Replicas > 5 {
		bad("Replicas", "%d: want 1 to 5", d.Replicas)
	}
	positive := []struct {
		name string
		v    time.Duration
	}{
		{"DuplicateWindow", d.DuplicateWindow}, {"MaxAge", d.MaxAge}, {"StateTTL", d.StateTTL},
		{"StateRefresh", d.StateRefresh}, {"StaleAfter", d.StaleAfter}, {"AckTimeout", d.AckTimeout},
		{"SnapshotTimeout", d.SnapshotTimeout}, {"RequestTimeout", d.RequestTimeout},
	}
	for _, p := range positive {
		if p.v < 0 {
			bad(p.name, "%s: must not be negative", p.v)
		}
	}
	if d.DuplicateWindow > d.MaxAge {
		bad("DuplicateWindow", "%s exceeds MaxAge %s (JetStream requires duplicates window <= max age)", d.DuplicateWindow, d.MaxAge)
	}
	if d.StateTTL < d.StaleAfter {
		bad("StateTTL", "%s is shorter than StaleAfter %s: entries would vanish before they are reported stale", d.StateTTL, d.StaleAfter)
	}
	if d.MaxBytes < -1 {
		bad("MaxBytes", "%d: want a size in bytes, -1 (unlimited) or 0 (leave the stream's limit)", d.MaxBytes)
	}
	counts := []struct {
		name string
		v    int64
	}{
		{"BufferMessages", int64(d.BufferMessages)}, {"BufferBytes", d.BufferBytes}, {"MaxInFlight", int64(d.MaxInFlight)},
		{"SnapshotConcurrency", int64(d.SnapshotConcurrency)}, {"SnapshotBurst", int64(d.SnapshotBurst)},
		{"SnapshotMaxWaiters", int64(d.SnapshotMaxWaiters)},
	}
	for _, n := range counts {
		if n.v < 1 {
			bad(n.name, "%d: must be positive", n.v)
		}
	}
	if d.MaxInFlight > d.BufferMessages && d.BufferMessages > 0 {
		bad("MaxInFlight", "%d exceeds BufferMessages %d", d.MaxInFlight, d.BufferMessages)
	}
	if d.DropPolicy != Block && d.DropPolicy != DropOldest {
		bad("DropPolicy", "unknown policy %d", d.DropPolicy)
	}
	if d.SnapshotRate < 0 {
		bad("SnapshotRate", "%g: must be positive", d.SnapshotRate)
	}
	return errors.Join(errs...)
}

// streamSubject is the stream's subject filter, "<prefix>.>".
func (c Config) streamSubject() string { return c.SubjectPrefix + ".>" }

// checkName accepts JetStream stream and bucket names: 1..255 of
// [A-Za-z0-9_-].
func checkName(s string) error {
	if s == "" || len(s) > 255 {
		return fmt.Errorf("%q: want 1 to 255 characters", s)
	}
	for i := 0; i < len(s); i++ {
		if !bridge.IsIdentChar(s[i]) {
			return fmt.Errorf("%q has %q at offset %d; allowed are letters, digits, '_' and '-'", s, s[i], i)
		}
	}
	return nil
}

// checkSubjectPrefix accepts one or more dot-separated tokens of
// [A-Za-z0-9_-].
func checkSubjectPrefix(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" {
			return fmt.Errorf("%q has an empty token", s)
		}
		for i := 0; i < len(tok); i++ {
			if !bridge.IsIdentChar(tok[i]) {
				return fmt.Errorf("%q has %q; subject tokens allow letters, digits, '_' and '-'", s, tok[i])
			}
		}
	}
	return nil
}
