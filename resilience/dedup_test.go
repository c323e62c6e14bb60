package resilience

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDedupConfigValidation(t *testing.T) {
	tests := []struct {
		name  string
		cfg   DedupConfig
		field string
	}{
		{name: "defaults", cfg: DefaultDedupConfig()},
		{name: "zero TTL takes default", cfg: DedupConfig{WindowSize: 5}},
		{name: "zero window", cfg: DedupConfig{TTL: time.Second}, field: "WindowSize"},
		{name: "zero value", cfg: DedupConfig{}, field: "WindowSize"},
		{name: "negative window", cfg: DedupConfig{WindowSize: -1}, field: "WindowSize"},
		{name: "window too large", cfg: DedupConfig{WindowSize: math.MaxInt32 + 1}, field: "WindowSize"},
		{name: "negative TTL", cfg: DedupConfig{WindowSize: 5, TTL: -time.Second}, field: "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewMessageDeduplicator[int64](tt.cfg)
			if tt.field != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "DedupConfig."+tt.field) {
					t.Fatalf("err = %v, want ErrInvalidConfig naming %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Stats().WindowSize != tt.cfg.WindowSize {
				t.Fatalf("WindowSize = %d", d.Stats().WindowSize)
			}
		})
	}
}

func newDedup[K comparable](t testing.TB, window int, ttl time.Duration) *MessageDeduplicator[K] {
	t.Helper()
	d, err := NewMessageDeduplicator[K](DedupConfig{WindowSize: window, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// step is one operation against a deduplicator at an offset from its base.
type step struct {
	at     time.Duration
	id     int64
	check  bool // IsDuplicateAt instead of RecordAt
	want   bool // RecordAt: new; IsDuplicateAt: duplicate
	wantLn int  // Len after the step; -1 = don't check
}

func TestDedupSequences(t *testing.T) {
	const ttl = 10 * time.Second
	tests := []struct {
		name   string
		window int
		steps  []step
	}{
		{name: "record and repeat", window: 3, steps: []step{
			{at: 0, id: 1, want: true, wantLn: 1},
			{at: 0, id: 1, want: false, wantLn: 1},
			{at: 0, id: 1, check: true, want: true, wantLn: 1},
			{at: 0, id: 2, check: true, want: false, wantLn: 1},
			{at: 1, id: 2, want: true, wantLn: 2},
		}},
		{name: "TTL expiry exactly at the boundary", window: 3, steps: []step{
			{at: 0, id: 7, want: true},
			{at: ttl - 1, id: 7, check: true, want: true, wantLn: 1},
			{at: ttl - 1, id: 7, want: false, wantLn: 1},
			{at: ttl, id: 7, check: true, want: false, wantLn: 1}, // IsDuplicate does not expire eagerly
			{at: ttl, id: 7, want: true, wantLn: 1},               // forgotten at exactly at+TTL, recorded anew
			{at: 2*ttl - 1, id: 7, want: false, wantLn: 1},
		}},
		{name: "duplicate keeps original time", window: 3, steps: []step{
			{at: 0, id: 1, want: true},
			{at: 9 * time.Second, id: 1, want: false},
			{at: ttl, id: 1, want: true, wantLn: 1},
		}},
		{name: "window eviction forgets the oldest", window: 3, steps: []step{
			{at: 0, id: 1, want: true},
			{at: 0, id: 2, want: true},
			{at: 0, id: 3, want: true, wantLn: 3},
			{at: 0, id: 4, want: true, wantLn: 3},
			{at: 0, id: 1, check: true, want: false},
			{at: 0, id: 2, want: false},
			{at: 0, id: 1, want: true, wantLn: 3}, // evicts 2
			{at: 0, id: 2, want: true, wantLn: 3},
		}},
		{name: "window of one", window: 1, steps: []step{
			{at: 0, id: 1, want: true},
			{at: 0, id: 1, want: false},
			{at: 0, id: 2, want: true, wantLn: 1},
			{at: 0, id: 1, want: true, wantLn: 1},
		}},
		{name: "partial expiry", window: 5, steps: []step{
			{at: 0, id: 1, want: true},
			{at: 5 * time.Second, id: 2, want: true},
			{at: ttl, id: 3, want: true, wantLn: 2},
			{at: ttl, id: 2, want: false},
			{at: ttl + 5*time.Second, id: 4, want: true, wantLn: 2},
		}},
		{name: "time going backwards is clamped", window: 5, steps: []step{
			{at: 5 * time.Second, id: 1, want: true},
			{at: 0, id: 2, want: true}, // treated as recorded at 5s
			{at: ttl + time.Second, id: 2, want: false, wantLn: 2},
			{at: ttl + 5*time.Second, id: 2, want: true, wantLn: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDedup[int64](t, tt.window, ttl)
			for i, s := range tt.steps {
				now := d.base.Add(s.at)
				var got bool
				if s.check {
					got = d.IsDuplicateAt(s.id, now)
				} else {
					got = d.RecordAt(s.id, now)
				}
				if got != s.want {
					t.Fatalf("step %d %+v: got %v", i, s, got)
				}
				if s.wantLn > 0 && d.Len() != s.wantLn {
					t.Fatalf("step %d %+v: Len = %d, want %d", i, s, d.Len(), s.wantLn)
				}
				checkDedupInvariants(t, d)
			}
		})
	}
}

// checkDedupInvariants verifies that the ring and the index agree, that
// the ring is in time order and within the window, and that every index
// cell is reachable from its home without crossing an empty cell.
func checkDedupInvariants[K comparable](t testing.TB, d *MessageDeduplicator[K]) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n < 0 || d.n > len(d.ring) || len(d.index) < 2*len(d.ring) {
		t.Fatalf("n = %d, window %d, index %d", d.n, len(d.ring), len(d.index))
	}
	used := 0
	for i, s := range d.index {
		if s.pos == 0 {
			continue
		}
		used++
		live := (int(s.pos-1) - d.head + len(d.ring)) % len(d.ring)
		if live >= d.n || d.ring[s.pos-1].tag != s.tag {
			t.Fatalf("index cell %d points at dead ring entry %d", i, s.pos-1)
		}
		for j := s.tag & d.mask; j != uint32(i); j = (j + 1) & d.mask {
			if d.index[j].pos == 0 {
				t.Fatalf("index cell %d unreachable from home %d", i, s.tag&d.mask)
			}
		}
	}
	if used != d.n {
		t.Fatalf("index holds %d cells, ring %d entries", used, d.n)
	}
	prev := int64(math.MinInt64)
	for i := range d.n {
		pos := (d.head + i) % len(d.ring)
		e := d.ring[pos]
		if c, ok := d.find(e.key, e.tag); !ok || int(d.index[c].pos) != pos+1 {
			t.Fatalf("ring entry %d (%v) not indexed", pos, e.key)
		}
		if e.at < prev {
			t.Fatalf("ring not in time order at %d", pos)
		}
		prev = e.at
	}
}

func TestDedupStringKeysStatsReset(t *testing.T) {
	d := newDedup[string](t, 2, time.Minute)
	base := d.base
	d.RecordAt("a", base)
	d.RecordAt("a", base)
	d.RecordAt("b", base)
	d.RecordAt("c", base) // evicts a
	d.IsDuplicateAt("c", base)
	d.RecordAt("d", base.Add(2*time.Minute)) // expires b and c
	want := DedupStats{Checks: 1, Recorded: 4, Duplicates: 1, Evicted: 1, Expired: 2, Len: 1, WindowSize: 2}
	if got := d.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	d.Reset()
	if got := d.Stats(); got != (DedupStats{WindowSize: 2}) || d.Len() != 0 {
		t.Fatalf("after Reset: %+v", got)
	}
	if !d.Record("d") {
		t.Fatal("Reset did not forget d")
	}
	checkDedupInvariants(t, d)
}

func TestDedupStructKeys(t *testing.T) {
	type key struct {
		exchange string
		id       int64
	}
	d := newDedup[key](t, 10, time.Minute)
	if !d.Record(key{"binance", 1}) || !d.Record(key{"bybit", 1}) || d.Record(key{"binance", 1}) {
		t.Fatal("struct keys not distinguished")
	}
}

func TestDedupExtremeTimes(t *testing.T) {
	d := newDedup[int64](t, 4, time.Second)
	far := []time.Time{{}, time.Unix(0, math.MinInt64), time.Unix(1<<62, 0), d.base.Add(math.MaxInt64), d.base.Add(math.MinInt64)}
	for i, tm := range far {
		d.RecordAt(int64(i), tm)
		d.IsDuplicateAt(int64(i), tm)
		checkDedupInvariants(t, d)
	}
	if d.RecordAt(99, d.base.Add(math.MaxInt64)) != true || d.Len() > 4 {
		t.Fatalf("Len = %d", d.Len())
	}
}

func TestDedupSteadyStateNoAlloc(t *testing.T) {
	d := newDedup[int64](t, 1000, time.Minute)
	now := time.Now()
	id := int64(0)
	for range 100_000 { // warm the map up to its working size
		id++
		d.RecordAt(id, now)
	}
	allocs := testing.AllocsPerRun(10_000, func() {
		id++
		if d.IsDuplicateAt(id, now) || !d.RecordAt(id, now) {
			t.Fatal("fresh id reported duplicate")
		}
	})
	if allocs != 0 {
		t.Fatalf("IsDuplicate+Record allocate %v per call in steady state", allocs)
	}
	checkDedupInvariants(t, d)
}

func TestDedupConcurrent(t *testing.T) {
	const workers, per = 4, 2000
	d := newDedup[string](t, per, time.Minute) // every id fits in the window
	news := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				// Every worker records the same ids 0..per-1: each must be
				// new for exactly one worker.
				if d.Record(strconv.Itoa(i)) {
					news[w]++
				}
				_ = d.IsDuplicate(strconv.Itoa(i))
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range news {
		total += n
	}
	if total != per {
		t.Fatalf("%d new ids, want %d", total, per)
	}
	checkDedupInvariants(t, d)
}
