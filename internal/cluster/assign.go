package cluster

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// Unit is one unit of work: a market (the md subject's exchange token,
// "binance", "bybit-linear", ...) and one of its symbols, with all the
// channels the subscriptions give it.
type Unit struct {
	Market string
	Symbol string
}

// String is "market:symbol".
func (u Unit) String() string { return u.Market + ":" + u.Symbol }

func compareUnits(a, b Unit) int {
	return cmp.Or(cmp.Compare(a.Market, b.Market), cmp.Compare(a.Symbol, b.Symbol))
}

// score is the rendezvous weight of member for u: FNV-1a over member,
// market and symbol (NUL separated), finished with the splitmix64 mixer so
// that names differing in one character spread over the whole range.
func score(member string, u Unit) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	h.Write([]byte{0})
	h.Write([]byte(u.Market))
	h.Write([]byte{0})
	h.Write([]byte(u.Symbol))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Owners returns the r members that carry u: the r highest rendezvous
// (highest random weight) scores of (member, u), highest first, ties broken
// by name. Every replica computes the same owners from the same member
// set, whatever its order. r ≥ len(members) returns every member; r < 1 is
// taken as 1; no members returns nil.
//
// Why rendezvous hashing: it needs no shared state beyond the member list
// (no ring, no virtual nodes, no table to agree on), gives each unit's R
// owners directly, and when a member joins or leaves only the units whose
// top R change move: about R/N of the units gain or lose one owner, so
// about 1/N of all (unit, owner) pairs move, the minimum possible.
func Owners(u Unit, members []string, r int) []string {
	if len(members) == 0 {
		return nil
	}
	r = max(r, 1)
	type scored struct {
		name string
		s    uint64
	}
	all := make([]scored, len(members))
	for i, m := range members {
		all[i] = scored{m, score(m, u)}
	}
	slices.SortFunc(all, func(a, b scored) int {
		return cmp.Or(cmp.Compare(b.s, a.s), cmp.Compare(a.name, b.name))
	})
	r = min(r, len(all))
	out := make([]string, r)
	for i := range out {
		out[i] = all[i].name
	}
	return out
}

// Assign returns the owners of every unit (see Owners).
func Assign(units []Unit, members []string, r int) map[Unit][]string {
	out := make(map[Unit][]string, len(units))
	for _, u := range units {
		out[u] = Owners(u, members, r)
	}
	return out
}

// Mine returns the units self carries among units, sorted.
func Mine(units []Unit, members []string, self string, r int) []Unit {
	var out []Unit
	for _, u := range units {
		if slices.Contains(Owners(u, members, r), self) {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, compareUnits)
	return out
}

// Moved compares two assignments of the same units: the number of (unit,
// owner) pairs in after that were not in before, and the total number of
// pairs in after. moved/total is the share of the work that changed hands.
func Moved(before, after map[Unit][]string) (moved, total int) {
	for u, owners := range after {
		for _, o := range owners {
			total++
			if !slices.Contains(before[u], o) {
				moved++
			}
		}
	}
	return moved, total
}
