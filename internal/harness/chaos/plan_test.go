package chaos

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/qldata/mdbridge/exsim"
)

func testPlanConfig(seed uint64) PlanConfig {
	return PlanConfig{
		Seed: seed, Duration: 10 * time.Minute, Every: 3 * time.Second,
		Venues: []exsim.Venue{exsim.Binance, exsim.BybitSpot, exsim.BybitLinear, exsim.BinanceUSDM, exsim.OKXSpot},
		Kinds:  AllKinds(), HeartbeatTimeout: 5 * time.Second, Replicas: 2,
	}
}

func TestPlanDeterministic(t *testing.T) {
	a, b := NewPlan(testPlanConfig(42)), NewPlan(testPlanConfig(42))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two plans")
	}
	if c := NewPlan(testPlanConfig(43)); reflect.DeepEqual(a, c) {
		t.Fatal("seeds 42 and 43 gave the same plan")
	}
}

func TestPlanInvariants(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		pc := testPlanConfig(seed)
		plan := NewPlan(pc)
		if len(plan) < 100 {
			t.Fatalf("seed %d: %d faults in 10 minutes at one per 3 s", seed, len(plan))
		}
		// The first round holds every kind once (replica_add: once, at
		// the middle of the phase).
		var first []FaultKind
		for _, f := range plan[:len(AllKinds())-1] {
			first = append(first, f.Kind)
		}
		adds := slices.DeleteFunc(slices.Clone(plan), func(f PlannedFault) bool { return f.Kind != KindAdd })
		if len(adds) != 1 || adds[0].At != pc.Duration/2 || adds[0].Replica != pc.Replicas {
			t.Fatalf("seed %d: replica_add planned %v, want once at %s (replica %d)", seed, adds, pc.Duration/2, pc.Replicas)
		}
		for _, k := range AllKinds() {
			if k != KindAdd && !slices.Contains(first, k) {
				t.Fatalf("seed %d: kind %s missing from the first round %v", seed, k, first)
			}
		}
		var natsFree, killFree time.Duration
		for i, f := range plan {
			if f.N != i+1 {
				t.Fatalf("seed %d: fault %d numbered %d", seed, i, f.N)
			}
			if i > 0 && f.At <= plan[i-1].At {
				t.Fatalf("seed %d: fault %d at %s not after %s", seed, f.N, f.At, plan[i-1].At)
			}
			if f.At >= pc.Duration {
				t.Fatalf("seed %d: fault %d at %s beyond the duration", seed, f.N, f.At)
			}
			switch f.Kind {
			case KindNATS:
				if f.At < natsFree {
					t.Fatalf("seed %d: NATS restart %d overlaps the previous one", seed, f.N)
				}
				natsFree = f.At + f.Hold
			case KindKill:
				if f.At < killFree {
					t.Fatalf("seed %d: replica kill %d overlaps the previous one", seed, f.N)
				}
				killFree = f.At + f.Hold
				// The added replica (index Replicas) only after it joined.
				if f.Replica < 0 || f.Replica > pc.Replicas || f.Replica == pc.Replicas && f.At <= pc.Duration/2 {
					t.Fatalf("seed %d: kill of replica %d", seed, f.Replica)
				}
			case KindRESTBan:
				if !isBinance(f.Venue) {
					t.Fatalf("seed %d: %s on %s", seed, f.Kind, f.Venue)
				}
			case KindShutdown:
				if !isBinance(f.Venue) && f.Venue != exsim.OKXSpot {
					t.Fatalf("seed %d: %s on %s", seed, f.Kind, f.Venue)
				}
			case KindResnapshot:
				if f.Venue != exsim.BybitSpot && f.Venue != exsim.BybitLinear {
					t.Fatalf("seed %d: resnapshot on %s", seed, f.Venue)
				}
			case KindSeqReset:
				if f.Venue != exsim.OKXSpot {
					t.Fatalf("seed %d: okx seq reset on %s", seed, f.Venue)
				}
			case KindStall:
				if f.Hold <= 0 {
					t.Fatalf("seed %d: stall without a length", seed)
				}
			case KindREST429, KindREST5xx:
				if f.Status == 0 || f.Count <= 0 {
					t.Fatalf("seed %d: REST fault %+v", seed, f)
				}
			}
			if f.String() == "" {
				t.Fatal("empty description")
			}
		}
	}
}

func TestPlanApplicableKinds(t *testing.T) {
	tests := []struct {
		name     string
		venues   []exsim.Venue
		replicas int
		absent   []FaultKind
	}{
		{"binance only", []exsim.Venue{exsim.Binance}, 2, []FaultKind{KindResnapshot, KindSeqReset}},
		{"bybit only", []exsim.Venue{exsim.BybitSpot}, 2, []FaultKind{KindRESTBan, KindShutdown, KindSeqReset}},
		{"okx only", []exsim.Venue{exsim.OKXSpot}, 2, []FaultKind{KindRESTBan, KindResnapshot}},
		{"one replica", []exsim.Venue{exsim.Binance}, 1, []FaultKind{KindKill, KindResnapshot}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := testPlanConfig(1)
			pc.Venues, pc.Replicas = tt.venues, tt.replicas
			for _, f := range NewPlan(pc) {
				if slices.Contains(tt.absent, f.Kind) {
					t.Fatalf("planned %s", f)
				}
				if f.Venue != "" && !slices.Contains(tt.venues, f.Venue) {
					t.Fatalf("planned %s on an unconfigured venue", f)
				}
			}
		})
	}
}

func TestPlanEmpty(t *testing.T) {
	pc := testPlanConfig(1)
	pc.Duration = 0
	if p := NewPlan(pc); len(p) != 0 {
		t.Fatalf("zero duration planned %d faults", len(p))
	}
	pc = testPlanConfig(1)
	pc.Kinds = []FaultKind{KindClose}
	for _, f := range NewPlan(pc) {
		if f.Kind != KindClose {
			t.Fatalf("planned %s with only %s enabled", f.Kind, KindClose)
		}
	}
}

// TestPlanOKX: with OKX markets the plan resets OKX's books seqId and shuts
// OKX connections down (the 64008 notice), both on venue okx, the fault
// venue of okx and okx-swap.
func TestPlanOKX(t *testing.T) {
	pc := testPlanConfig(3)
	pc.Venues = []exsim.Venue{exsim.Binance, exsim.OKXSpot}
	seen := map[FaultKind]bool{}
	for _, f := range NewPlan(pc) {
		if f.Kind == KindSeqReset || f.Kind == KindShutdown && f.Venue == exsim.OKXSpot {
			seen[f.Kind] = true
		}
	}
	if !seen[KindSeqReset] || !seen[KindShutdown] {
		t.Fatalf("okx faults planned: %v", seen)
	}
	if v := faultVenue(exsim.OKXSwap); v != exsim.OKXSpot {
		t.Fatalf("faultVenue(okx-swap) = %s", v)
	}
}
