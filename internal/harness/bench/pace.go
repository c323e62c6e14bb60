package bench

import (
	"context"
	"time"
)

// paceStep is the pacing period of a fixed offered load: the messages due
// are offered in one batch per step (the simulator's generator works the
// same way).
const paceStep = time.Millisecond

// pace offers load by calling emit(k) with the number of messages due;
// emit returns how many it actually offered. With rate > 0 the due count
// grows at rate per second and is offered every paceStep; with rate 0 emit
// is called back to back with chunk. It stops after limit messages (0: no
// limit), at the deadline (zero: none) or when ctx ends, and returns the
// number offered.
func pace(ctx context.Context, rate float64, limit int, deadline time.Time, chunk int, emit func(k int) int) int {
	sent := 0
	left := func(k int) int {
		if limit > 0 {
			k = min(k, limit-sent)
		}
		return k
	}
	over := func(now time.Time) bool {
		return limit > 0 && sent >= limit || !deadline.IsZero() && !now.Before(deadline) || ctx.Err() != nil
	}
	if rate <= 0 {
		for !over(time.Now()) {
			sent += emit(left(chunk))
		}
		return sent
	}
	start := time.Now()
	tick := time.NewTicker(paceStep)
	defer tick.Stop()
	for {
		now := time.Now()
		if over(now) {
			return sent
		}
		if due := left(int(rate*now.Sub(start).Seconds()) - sent); due > 0 {
			sent += emit(due)
		}
		select {
		case <-ctx.Done():
			return sent
		case <-tick.C:
		}
	}
}
