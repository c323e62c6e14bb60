package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// StateEntry is one md_state entry as a reader sees it.
type StateEntry struct {
	Key      string
	Revision uint64
	State    bridge.SymbolState
	// Age is how long ago the writer last refreshed the entry (now - Updated).
	Age time.Duration
	// Stale is true when Age exceeds the stale threshold: the instance that
	// owns the entry has stopped refreshing it (it died or lost NATS).
	Stale bool
	// Deleted is true for a watch event that removed the key.
	Deleted bool
	// Err is set when the value is not a valid state document.
	Err error
}

// ReadOption adjusts ReadStates and WatchStates.
type ReadOption func(*readOpts)

type readOpts struct {
	staleAfter time.Duration
	now        func() time.Time
}

// WithStaleAfter sets the Updated age beyond which an entry is stale
// (default DefaultStaleAfter, 3 × the default refresh). Use the writer's
// Config.StaleAfter when it is not the default.
func WithStaleAfter(d time.Duration) ReadOption {
	return func(o *readOpts) {
		if d > 0 {
			o.staleAfter = d
		}
	}
}

// WithNow sets the clock used to compute Age and Stale (default time.Now).
func WithNow(now func() time.Time) ReadOption {
	return func(o *readOpts) {
		if now != nil {
			o.now = now
		}
	}
}

func readOptions(opts []ReadOption) readOpts {
	o := readOpts{staleAfter: DefaultStaleAfter, now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// decodeEntry turns a KV entry into a StateEntry.
func decodeEntry(e jetstream.KeyValueEntry, o readOpts) StateEntry {
	se := StateEntry{Key: e.Key(), Revision: e.Revision()}
	if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
		se.Deleted = true
		return se
	}
	if err := json.Unmarshal(e.Value(), &se.State); err != nil {
		se.Err = fmt.Errorf("publisher: state %s: %w", e.Key(), err)
		se.Stale = true
		return se
	}
	se.Age = o.now().Sub(se.State.Updated)
	se.Stale = se.Age > o.staleAfter
	return se
}

// ReadStates returns every entry of the state bucket, sorted by key, with
// Age and Stale computed now.
//
// It reads every revision the bucket keeps (StateHistory per key at most)
// and keeps each key's newest. Reading only the last revision per key
// (the KV default) relies on the server's initial pending count for a
// last-per-subject consumer, which can overstate what is delivered while
// other writers rewrite their keys: the end of the initial values then
// arrives only once the writers pause, which under load could take the
// whole deadline (a TestStateBucket flake). Reading all revisions makes
// the count exact.
func ReadStates(ctx context.Context, kv jetstream.KeyValue, opts ...ReadOption) ([]StateEntry, error) {
	o := readOptions(opts)
	w, err := kv.WatchAll(ctx, jetstream.IncludeHistory())
	if err != nil {
		return nil, fmt.Errorf("publisher: read states: %w", err)
	}
	defer w.Stop()
	newest := map[string]jetstream.KeyValueEntry{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("publisher: read states: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("publisher: read states: watcher closed")
			}
			if e == nil { // every revision delivered
				out := make([]StateEntry, 0, len(newest))
				for _, e := range newest {
					if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
						continue
					}
					out = append(out, decodeEntry(e, o))
				}
				slices.SortFunc(out, func(a, b StateEntry) int { return strings.Compare(a.Key, b.Key) })
				return out, nil
			}
			if old, ok := newest[e.Key()]; !ok || e.Revision() > old.Revision() {
				newest[e.Key()] = e
			}
		}
	}
}

// WatchStates follows the bucket: first the current entries, then every
// change, until ctx ends (then the channel is closed). pattern is a key
// pattern such as "binance.BTCUSDT.*"; "" watches everything. Stale is
// computed when each entry is received.
func WatchStates(ctx context.Context, kv jetstream.KeyValue, pattern string, opts ...ReadOption) (<-chan StateEntry, error) {
	o := readOptions(opts)
	if pattern == "" {
		pattern = ">"
	}
	w, err := kv.Watch(ctx, pattern)
	if err != nil {
		return nil, fmt.Errorf("publisher: watch states %q: %w", pattern, err)
	}
	out := make(chan StateEntry, 64)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				select {
				case out <- decodeEntry(e, o):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
