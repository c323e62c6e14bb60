package resilience

import (
	"testing"
	"time"
)

// TestDedupGrowsLazily checks that storage starts small, doubles up to the
// window and never past it, and that growth keeps every remembered id and
// the record order (the oldest is still the first evicted).
func TestDedupGrowsLazily(t *testing.T) {
	tests := []struct {
		name    string
		window  int
		initial int
	}{
		{"below initial size", 3, 3},
		{"equal to initial size", dedupInitialSize, dedupInitialSize},
		{"power of two", 1024, dedupInitialSize},
		{"not a power of two", 1000, dedupInitialSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDedup[int64](t, tt.window, time.Minute)
			if got := len(d.ring); got != tt.initial {
				t.Fatalf("initial ring %d, want %d", got, tt.initial)
			}
			at := d.base
			for id := range int64(tt.window) {
				if !d.RecordAt(id, at) {
					t.Fatalf("id %d reported duplicate", id)
				}
				if len(d.ring) > tt.window {
					t.Fatalf("ring %d exceeds window %d", len(d.ring), tt.window)
				}
				if id%97 == 0 {
					checkDedupInvariants(t, d)
				}
			}
			checkDedupInvariants(t, d)
			if len(d.ring) != tt.window {
				t.Fatalf("full ring %d, want window %d", len(d.ring), tt.window)
			}
			for id := range int64(tt.window) {
				if !d.IsDuplicateAt(id, at) {
					t.Fatalf("id %d forgotten by growth", id)
				}
			}
			// Full: the next id evicts the oldest (0), not another one.
			if !d.RecordAt(int64(tt.window), at) || d.IsDuplicateAt(0, at) || !d.IsDuplicateAt(1, at) {
				t.Fatal("eviction after growth did not drop the oldest id")
			}
			if st := d.Stats(); st.Evicted != 1 || st.Len != tt.window || st.WindowSize != tt.window {
				t.Fatalf("Stats = %+v", st)
			}
			d.Reset()
			if st := d.Stats(); st.WindowSize != tt.window || st.Len != 0 {
				t.Fatalf("after Reset: %+v", st)
			}
			checkDedupInvariants(t, d)
		})
	}
}

// TestDedupGrowthAcrossWrappedRing grows a ring whose live entries wrap
// around its end (expiry moved head forward first).
func TestDedupGrowthAcrossWrappedRing(t *testing.T) {
	d := newDedup[string](t, 64, 10*time.Nanosecond)
	base := d.base
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for i, k := range keys[:5] {
		d.RecordAt(k, base.Add(time.Duration(i)))
	}
	// At 12, a and b (recorded at 0 and 1) and c (2) have expired: head is 3.
	now := base.Add(12)
	for _, k := range []string{"x", "y", "z", "w", "v", "u", "s"} {
		if !d.RecordAt(k, now) {
			t.Fatalf("%s reported duplicate", k)
		}
		checkDedupInvariants(t, d)
	}
	if len(d.ring) != 2*dedupInitialSize {
		t.Fatalf("ring %d, want %d", len(d.ring), 2*dedupInitialSize)
	}
	for _, k := range []string{"d", "e", "x", "s"} {
		if !d.IsDuplicateAt(k, now) {
			t.Fatalf("%s forgotten", k)
		}
	}
	if d.IsDuplicateAt("a", now) {
		t.Fatal("expired a still remembered")
	}
}
