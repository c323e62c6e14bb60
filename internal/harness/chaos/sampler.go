package chaos

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"time"
)

// Sample is one measurement of the process's resources.
type Sample struct {
	At         time.Duration `json:"at"` // since the start of the soak
	Phase      string        `json:"phase"`
	Goroutines int           `json:"goroutines"`
	HeapInuse  uint64        `json:"heap_inuse"` // bytes of in-use heap spans
	RSS        uint64        `json:"rss"`        // resident set size in bytes (0 where /proc is unavailable)
	// Replicas is the number of replicas up (steady samples; 0: unknown).
	Replicas int `json:"replicas,omitempty"`
	// Steady is set on the two samples the bounds compare: taken after a
	// forced GC in the same conditions (all replicas up, no fault).
	Steady bool `json:"steady,omitempty"`
}

// takeSample measures now. steady forces a GC and returns freed memory to
// the OS first, so that heap and RSS reflect live data.
func takeSample(start time.Time, phase string, steady bool) Sample {
	if steady {
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Sample{
		At: time.Since(start), Phase: phase, Goroutines: runtime.NumGoroutine(),
		HeapInuse: ms.HeapInuse, RSS: readRSS(), Steady: steady,
	}
}

// writeHeapProfile writes a heap profile to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readRSS reads the resident set size from /proc/self/statm (0 if it
// cannot).
func readRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// ResourceCheck is the verdict on resource growth.
type ResourceCheck struct {
	// Scale is final/baseline replicas up (1 when unknown): the baseline
	// terms of the bounds are multiplied by it.
	Scale    float64 `json:"scale"`
	Baseline Sample  `json:"baseline"`
	Final    Sample  `json:"final"`
	Peak     Sample  `json:"peak"` // the sample with the most goroutines
	PeakHeap uint64  `json:"peak_heap"`
	PeakRSS  uint64  `json:"peak_rss"`
	// Bound states the limits in words.
	Bound        string `json:"bound"`
	GoroutineMax int    `json:"goroutine_max"`
	HeapMax      uint64 `json:"heap_max"`
	RSSMax       uint64 `json:"rss_max"`
	GoroutinesOK bool   `json:"goroutines_ok"`
	HeapOK       bool   `json:"heap_ok"`
	RSSOK        bool   `json:"rss_ok"`
	SampleCount  int    `json:"samples"`
}

// checkResources compares the final steady sample with the baseline.
func checkResources(samples []Sample, baseline, final Sample) ResourceCheck {
	rc := ResourceCheck{Baseline: baseline, Final: final, SampleCount: len(samples)}
	for _, s := range samples {
		if s.Goroutines > rc.Peak.Goroutines {
			rc.Peak = s
		}
		rc.PeakHeap = max(rc.PeakHeap, s.HeapInuse)
		rc.PeakRSS = max(rc.PeakRSS, s.RSS)
	}
	// A replica added during the soak (replica_add) carries its share of
	// the load: the baseline is scaled by final/baseline replicas up.
	scale := 1.0
	if baseline.Replicas > 0 && final.Replicas > 0 {
		scale = float64(final.Replicas) / float64(baseline.Replicas)
	}
	rc.Scale = scale
	bg := int(float64(baseline.Goroutines) * scale)
	rc.GoroutineMax = bg + bg*GoroutineGrowthPct/100 + GoroutineGrowthAbs
	rc.HeapMax = uint64(float64(baseline.HeapInuse)*scale*HeapGrowthFactor) + HeapGrowthAbs
	rc.RSSMax = uint64(float64(baseline.RSS)*scale*RSSGrowthFactor) + RSSGrowthAbs
	if raceDetector {
		rc.RSSMax += RaceRSSPerPeakHeap * rc.PeakHeap
	}
	rc.GoroutinesOK = final.Goroutines <= rc.GoroutineMax
	rc.HeapOK = final.HeapInuse <= rc.HeapMax
	rc.RSSOK = baseline.RSS == 0 || final.RSS <= rc.RSSMax
	rc.Bound = "after the faults, with every replica up and all faults cleared, goroutines <= baseline + " +
		strconv.Itoa(GoroutineGrowthPct) + "% + " + strconv.Itoa(GoroutineGrowthAbs) +
		" and in-use heap (after GC) <= " + strconv.FormatFloat(HeapGrowthFactor, 'f', -1, 64) + " x baseline + " +
		strconv.Itoa(HeapGrowthAbs>>20) + " MiB and RSS (after returning freed memory) <= " +
		strconv.FormatFloat(RSSGrowthFactor, 'f', -1, 64) + " x baseline + " + strconv.Itoa(RSSGrowthAbs>>20) +
		" MiB; baseline = the same measurement at the end of warm-up, scaled by final/baseline replicas up (" +
		strconv.Itoa(final.Replicas) + "/" + strconv.Itoa(baseline.Replicas) + ")"
	if raceDetector {
		rc.Bound += "; built with -race: RSS bound + " + strconv.Itoa(RaceRSSPerPeakHeap) +
			" x the peak in-use heap (the detector's shadow memory stays resident after the heap shrank)"
	}
	return rc
}

func mib(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }
