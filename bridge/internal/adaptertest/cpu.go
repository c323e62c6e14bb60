package adaptertest

import "testing"

// ReportCPU starts measuring the process's CPU time and returns a function
// that reports it per iteration as the metric "cpu-ns/op" (call it right
// after the loop). On a machine shared with other work a benchmark's ns/op
// is wall time and includes waiting for a CPU; cpu-ns/op counts only the
// CPU the process used (its garbage collector included), so it stays
// comparable. Not reported where the process's CPU time is unavailable.
func ReportCPU(b *testing.B) (stop func()) {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
