package chaos

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/qldata/mdbridge/exsim"
)

// FaultKind names one kind of fault the soak injects.
type FaultKind string

// Fault kinds. Exchange-side kinds act on one venue (all its connections, or
// one connection); nats_restart and replica_kill act on the infrastructure.
const (
	KindClose      FaultKind = "upstream_close"   // abrupt TCP close (exsim FaultClose)
	KindStall      FaultKind = "stall"            // server stops writing (FaultStall), short or past the heartbeat timeout
	KindDuplicate  FaultKind = "duplicate_flood"  // frames sent twice (FaultDuplicate)
	KindGap        FaultKind = "depth_gap"        // book diffs skipped (FaultGap)
	KindMalformed  FaultKind = "malformed"        // invalid JSON, wrong types, truncated frames (FaultMalformed)
	KindOversized  FaultKind = "oversized"        // padded frames under and over the read limit (FaultMalformed oversized)
	KindREST429    FaultKind = "rest_429"         // REST answers 429 with Retry-After (FaultREST)
	KindRESTBan    FaultKind = "rest_418"         // Binance REST answers 418 (IP ban) with Retry-After
	KindREST5xx    FaultKind = "rest_5xx"         // REST answers 500/502/503/504
	KindSkew       FaultKind = "clock_skew"       // venue clock jumps ahead or behind (FaultSkew)
	KindMaxAge     FaultKind = "max_age"          // connections cut at a short age, 24h-style (FaultMaxAge)
	KindShutdown   FaultKind = "server_shutdown"  // serverShutdown announcement, then close (FaultShutdown)
	KindResnapshot FaultKind = "bybit_resnapshot" // Bybit re-sends book snapshots (FaultResnapshot)
	KindSeqReset   FaultKind = "okx_seq_reset"    // OKX books seqId goes down once, as in maintenance (Server.OKXSeqReset)
	KindNATS       FaultKind = "nats_restart"     // embedded NATS stopped, restarted on the same port and store
	KindKill       FaultKind = "replica_kill"     // a replica closed abruptly (no graceful shutdown), restarted later
	KindAdd        FaultKind = "replica_add"      // a new replica joins the cluster and stays (units hand over to it)
)

// AllKinds lists every fault kind, in report order.
func AllKinds() []FaultKind {
	return []FaultKind{KindClose, KindStall, KindDuplicate, KindGap, KindMalformed, KindOversized,
		KindREST429, KindRESTBan, KindREST5xx, KindSkew, KindMaxAge, KindShutdown, KindResnapshot,
		KindSeqReset, KindNATS, KindKill, KindAdd}
}

// kindWeight is how often a kind is drawn after the first round.
var kindWeight = map[FaultKind]int{
	KindClose: 3, KindStall: 2, KindDuplicate: 2, KindGap: 2, KindMalformed: 2, KindOversized: 1,
	KindREST429: 1, KindRESTBan: 1, KindREST5xx: 1, KindSkew: 1, KindMaxAge: 1, KindShutdown: 2,
	KindResnapshot: 1, KindSeqReset: 1, KindNATS: 1, KindKill: 3, // membership churn: kills and restarts move units (cluster mode)
	KindAdd: 0, // planned once (NewPlan), in the middle of the fault phase
}

// PlannedFault is one step of a fault plan.
type PlannedFault struct {
	N    int           `json:"n"`
	At   time.Duration `json:"at"` // offset from the start of the fault phase
	Kind FaultKind     `json:"kind"`
	// Venue is the targeted venue (exchange-side kinds).
	Venue exsim.Venue `json:"venue,omitempty"`
	// Conn > 0 targets one connection: the (Conn mod n)-th open connection
	// of Venue when the fault runs; 0 targets every connection of Venue.
	Conn int `json:"conn,omitempty"`
	// Replica is the index of the replica a replica_kill closes.
	Replica int `json:"replica,omitempty"`
	// Hold is how long the fault stays in force: a policy's lifetime, a
	// stall's length, an outage's length.
	Hold time.Duration `json:"hold,omitempty"`

	Rate   float64             `json:"rate,omitempty"`
	Count  int64               `json:"count,omitempty"`
	Status int                 `json:"status,omitempty"`
	Mode   exsim.MalformedMode `json:"mode,omitempty"`
	Size   int                 `json:"size,omitempty"`
	Extra  bool                `json:"extra,omitempty"`
	// Value is the clock offset of a clock_skew, the Retry-After of a REST
	// fault, the grace period of a server_shutdown or the age limit of a
	// max_age fault.
	Value time.Duration `json:"value,omitempty"`
}

// String describes the fault in one line.
func (f PlannedFault) String() string {
	s := fmt.Sprintf("#%d +%s %s", f.N, f.At.Round(time.Millisecond), f.Kind)
	if f.Venue != "" {
		s += " " + string(f.Venue)
		if f.Conn > 0 {
			s += fmt.Sprintf(" conn#%d", f.Conn)
		}
	}
	switch f.Kind {
	case KindKill, KindAdd:
		s += fmt.Sprintf(" replica %d", f.Replica)
	case KindDuplicate, KindGap:
		s += fmt.Sprintf(" rate %.2f", f.Rate)
	case KindMalformed, KindOversized:
		s += " " + string(f.Mode)
		if f.Count > 0 {
			s += fmt.Sprintf(" x%d", f.Count)
		} else {
			s += fmt.Sprintf(" rate %.2f", f.Rate)
		}
		if f.Size > 0 {
			s += fmt.Sprintf(" %dKiB", f.Size>>10)
		}
		if f.Extra {
			s += " extra"
		}
	case KindREST429, KindRESTBan, KindREST5xx:
		s += fmt.Sprintf(" %d x%d", f.Status, f.Count)
		if f.Value > 0 {
			s += fmt.Sprintf(" retry-after %s", f.Value)
		}
	case KindSkew:
		s += fmt.Sprintf(" %+v", f.Value)
	case KindMaxAge:
		s += fmt.Sprintf(" age %s", f.Value)
	case KindShutdown:
		s += fmt.Sprintf(" grace %s", f.Value)
	}
	if f.Hold > 0 {
		s += fmt.Sprintf(" for %s", f.Hold.Round(time.Millisecond))
	}
	return s
}

// PlanConfig is the input of NewPlan.
type PlanConfig struct {
	Seed     uint64
	Duration time.Duration // the fault phase
	Every    time.Duration // mean interval between fault starts
	Venues   []exsim.Venue // venues with markets
	Kinds    []FaultKind
	// HeartbeatTimeout is the bridge's silence limit: stalls are drawn
	// both below it (no reconnect expected) and past it.
	HeartbeatTimeout time.Duration
	Replicas         int
}

// NewPlan derives a fault plan from the seed alone: the same PlanConfig
// always gives the same plan. The first faults are every applicable kind
// once, in random order; after that kinds are drawn by weight. Inter-
// arrival times are exponential with mean Every (clamped), so faults
// overlap. NATS restarts never overlap each other, nor do replica kills
// (one replica is always left running); their hold includes the outage.
// A replica_add, if its kind is planned, is planned once, at the middle of
// the fault phase (so that kills happen both before and after the join),
// and not drawn again.
func NewPlan(pc PlanConfig) []PlannedFault {
	plan := newPlan(pc)
	if pc.Duration <= 0 || !slices.Contains(applicableKinds(pc.Kinds, pc.Venues, pc.Replicas), KindAdd) {
		return plan
	}
	add := PlannedFault{At: pc.Duration / 2, Kind: KindAdd, Replica: pc.Replicas}
	i, _ := slices.BinarySearchFunc(plan, add.At, func(f PlannedFault, at time.Duration) int { return cmp.Compare(f.At, at) })
	plan = slices.Insert(plan, i, add)
	for j := range plan {
		plan[j].N = j + 1
	}
	return plan
}

func newPlan(pc PlanConfig) []PlannedFault {
	rng := rand.New(rand.NewPCG(pc.Seed, pc.Seed^0x9e3779b97f4a7c15))
	kinds := slices.DeleteFunc(applicableKinds(pc.Kinds, pc.Venues, pc.Replicas), func(k FaultKind) bool { return k == KindAdd })
	if len(kinds) == 0 || pc.Duration <= 0 {
		return nil
	}
	round := slices.Clone(kinds)
	rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
	total := 0
	for _, k := range kinds {
		total += kindWeight[k]
	}
	var plan []PlannedFault
	var natsFree, killFree time.Duration
	at := time.Duration(0)
	for n := 0; ; n++ {
		gap := time.Duration(rng.ExpFloat64() * float64(pc.Every))
		at += min(max(gap, pc.Every/10), 3*pc.Every)
		if at >= pc.Duration {
			return plan
		}
		var k FaultKind
		if n < len(round) {
			k = round[n]
		} else {
			r := rng.IntN(total)
			for _, c := range kinds {
				if r -= kindWeight[c]; r < 0 {
					k = c
					break
				}
			}
		}
		f := PlannedFault{N: len(plan) + 1, At: at, Kind: k}
		switch k {
		case KindNATS:
			if at < natsFree {
				continue
			}
		case KindKill:
			if at < killFree {
				continue
			}
		}
		fillFault(rng, &f, pc)
		switch k {
		case KindNATS:
			natsFree = at + f.Hold + 5*time.Second
		case KindKill:
			killFree = at + f.Hold + 10*time.Second
		}
		plan = append(plan, f)
	}
}

// applicableKinds keeps the kinds the configured venues and replicas allow.
func applicableKinds(kinds []FaultKind, venues []exsim.Venue, replicas int) []FaultKind {
	var out []FaultKind
	for _, k := range kinds {
		if len(venuesFor(k, venues)) == 0 && k != KindNATS && k != KindKill && k != KindAdd {
			continue
		}
		if k == KindKill && replicas < 2 {
			continue
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// isBinance: Binance Spot or USD-M (REST weight bans, serverShutdown,
// consecutive trade ids, no re-sent snapshots).
func isBinance(v exsim.Venue) bool { return v == exsim.Binance || v == exsim.BinanceUSDM }

// isOKX: OKX SPOT or swaps (one endpoint: every OKX connection is of venue
// okx in the simulator's fault targeting).
func isOKX(v exsim.Venue) bool { return v == exsim.OKXSpot || v == exsim.OKXSwap }

// exactTrades: the venue's trades carry consecutive ids that the bridge
// backfills by id (Binance trade and aggregate trade ids, OKX trades-all
// tradeIds), so every missing trade is a failure unless no live replica
// could have had it.
func exactTrades(v exsim.Venue) bool { return isBinance(v) || v == exsim.OKXSpot }

// faultVenue is the venue exsim's faults and connections name for a
// market's venue: okx for both OKX markets.
func faultVenue(v exsim.Venue) exsim.Venue {
	if isOKX(v) {
		return exsim.OKXSpot
	}
	return v
}

// venuesFor is the venues a kind can target (fault venues: see faultVenue).
func venuesFor(k FaultKind, venues []exsim.Venue) []exsim.Venue {
	var out []exsim.Venue
	for _, v := range venues {
		switch k {
		case KindRESTBan:
			if !isBinance(v) {
				continue
			}
		case KindShutdown: // Binance serverShutdown, OKX's 64008 notice
			if !isBinance(v) && !isOKX(v) {
				continue
			}
		case KindResnapshot:
			if isBinance(v) || isOKX(v) {
				continue
			}
		case KindSeqReset:
			if !isOKX(v) {
				continue
			}
		case KindNATS, KindKill, KindAdd:
			continue
		}
		out = append(out, v)
	}
	return out
}

// fillFault draws the target and parameters of f.
func fillFault(rng *rand.Rand, f *PlannedFault, pc PlanConfig) {
	dur := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	if vs := venuesFor(f.Kind, pc.Venues); len(vs) > 0 {
		f.Venue = vs[rng.IntN(len(vs))]
	}
	oneConn := func() {
		if rng.IntN(2) == 0 {
			f.Conn = 1 + rng.IntN(1000)
		}
	}
	hb := pc.HeartbeatTimeout
	switch f.Kind {
	case KindClose:
		oneConn()
	case KindStall:
		oneConn()
		if rng.IntN(2) == 0 {
			f.Hold = dur(hb/5, hb*3/5) // below the heartbeat timeout: frames resume
		} else {
			f.Hold = dur(hb+time.Second, hb+5*time.Second) // detected as stale
		}
	case KindDuplicate:
		f.Rate = math.Round((0.2+0.8*rng.Float64())*100) / 100
		f.Hold = dur(2*time.Second, 8*time.Second)
	case KindGap:
		f.Rate = math.Round((0.02+0.13*rng.Float64())*100) / 100
		f.Hold = dur(2*time.Second, 6*time.Second)
	case KindMalformed:
		f.Mode = []exsim.MalformedMode{exsim.MalformedInvalidJSON, exsim.MalformedWrongTypes, exsim.MalformedTruncated}[rng.IntN(3)]
		if rng.IntN(2) == 0 {
			f.Count = 1 + rng.Int64N(5)
		} else {
			f.Rate = math.Round((0.01+0.04*rng.Float64())*1000) / 1000
		}
		f.Extra = rng.IntN(2) == 0
		f.Hold = dur(2*time.Second, 5*time.Second)
	case KindOversized:
		f.Mode = exsim.MalformedOversized
		f.Count = 1 + rng.Int64N(2)
		if rng.IntN(2) == 0 {
			f.Size = 1 << 20 // under the adapters' 4 MiB read limit
		} else {
			f.Size = 6 << 20 // over it: the bridge drops the connection
		}
		f.Extra = rng.IntN(2) == 0
		f.Hold = 5 * time.Second
	case KindREST429:
		f.Status, f.Count = 429, 2+rng.Int64N(7)
		f.Value = dur(time.Second, 3*time.Second).Round(time.Second)
		f.Hold = 10 * time.Second
	case KindRESTBan:
		f.Status, f.Count = 418, 1+rng.Int64N(3)
		f.Value = dur(2*time.Second, 6*time.Second).Round(time.Second)
		f.Hold = 10 * time.Second
	case KindREST5xx:
		f.Status, f.Count = []int{500, 502, 503, 504}[rng.IntN(4)], 2+rng.Int64N(9)
		f.Hold = 10 * time.Second
	case KindSkew:
		f.Value = dur(time.Second, 30*time.Second).Round(100 * time.Millisecond)
		if rng.IntN(2) == 0 {
			f.Value = -f.Value
		}
		f.Hold = dur(5*time.Second, 20*time.Second)
	case KindMaxAge:
		f.Hold = dur(8*time.Second, 25*time.Second)
		f.Value = dur(4*time.Second, 15*time.Second).Round(100 * time.Millisecond)
	case KindShutdown:
		f.Value = dur(time.Second, 4*time.Second).Round(100 * time.Millisecond) // grace before the close
	case KindNATS:
		f.Hold = dur(time.Second, 12*time.Second)
	case KindKill:
		// After a replica_add (at the middle), the added replica may be
		// killed too.
		n := max(pc.Replicas, 1)
		if f.At > pc.Duration/2 && slices.Contains(pc.Kinds, KindAdd) {
			n++
		}
		f.Replica = rng.IntN(n)
		f.Hold = dur(2*time.Second, 15*time.Second)
	}
}
