//go:build race

package chaos

// raceDetector: built with -race (see RaceRSSPerPeakHeap).
const raceDetector = true
