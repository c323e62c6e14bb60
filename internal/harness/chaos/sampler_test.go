package chaos

import "testing"

// TestCheckResourcesRSSBound: the RSS bound is factor x baseline + abs,
// plus RaceRSSPerPeakHeap x the peak heap when built with -race only.
func TestCheckResourcesRSSBound(t *testing.T) {
	base := Sample{Goroutines: 100, HeapInuse: 10 << 20, RSS: 100 << 20, Steady: true}
	peak := Sample{Goroutines: 120, HeapInuse: 80 << 20, RSS: 300 << 20}
	final := Sample{Goroutines: 100, HeapInuse: 12 << 20, RSS: 250 << 20, Steady: true}
	rc := checkResources([]Sample{base, peak, final}, base, final)
	want := uint64(150<<20) + RSSGrowthAbs
	if raceDetector {
		want += RaceRSSPerPeakHeap * (80 << 20)
	}
	if rc.RSSMax != want || rc.PeakHeap != 80<<20 {
		t.Fatalf("RSSMax %d, want %d (race %v), peak heap %d", rc.RSSMax, want, raceDetector, rc.PeakHeap)
	}
	if rc.RSSOK != (final.RSS <= want) || !rc.HeapOK || !rc.GoroutinesOK {
		t.Fatalf("verdict %+v", rc)
	}
}
