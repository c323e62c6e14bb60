package cluster

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func testUnits(n int) []Unit {
	units := make([]Unit, n)
	markets := []string{"binance", "bybit", "bybit-linear"}
	for i := range units {
		units[i] = Unit{Market: markets[i%len(markets)], Symbol: fmt.Sprintf("SYM%04dUSDT", i)}
	}
	return units
}

func members(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("mdbridge-%d", i)
	}
	return out
}

func TestOwnersDeterministicAndOrderFree(t *testing.T) {
	ms := members(5)
	rev := slices.Clone(ms)
	slices.Reverse(rev)
	for _, u := range testUnits(200) {
		a, b := Owners(u, ms, 2), Owners(u, rev, 2)
		if !slices.Equal(a, b) || len(a) != 2 || a[0] == a[1] {
			t.Fatalf("%v: owners %v and %v", u, a, b)
		}
	}
}

func TestOwnersBounds(t *testing.T) {
	u := Unit{"binance", "BTCUSDT"}
	if got := Owners(u, nil, 2); got != nil {
		t.Fatalf("no members: %v", got)
	}
	if got := Owners(u, members(3), 5); len(got) != 3 {
		t.Fatalf("R > N: %v, want every member", got)
	}
	if got := Owners(u, members(3), 0); len(got) != 1 {
		t.Fatalf("R = 0: %v, want one owner", got)
	}
}

// TestBalance: with 3000 units, 4 members and R=2 every member carries
// close to R/N of the units.
func TestBalance(t *testing.T) {
	units := testUnits(3000)
	for _, tc := range []struct{ n, r int }{{3, 1}, {3, 2}, {4, 2}, {6, 2}, {6, 3}} {
		count := map[string]int{}
		for _, owners := range Assign(units, members(tc.n), tc.r) {
			for _, o := range owners {
				count[o]++
			}
		}
		want := float64(len(units)*tc.r) / float64(tc.n)
		for m, c := range count {
			if math.Abs(float64(c)-want) > 0.1*want {
				t.Errorf("N=%d R=%d: %s carries %d units, want about %.0f", tc.n, tc.r, m, c, want)
			}
		}
	}
}

// TestMovementOnJoinAndLeave: a join or a leave moves about 1/N of the
// (unit, owner) pairs, and only pairs involving the member that came or
// went.
func TestMovementOnJoinAndLeave(t *testing.T) {
	units := testUnits(3000)
	for _, tc := range []struct{ n, r int }{{3, 1}, {3, 2}, {4, 2}, {8, 2}, {8, 3}} {
		before := Assign(units, members(tc.n), tc.r)
		joined := Assign(units, members(tc.n+1), tc.r)
		newcomer := members(tc.n + 1)[tc.n]
		moved, total := Moved(before, joined)
		share := float64(moved) / float64(total)
		ideal := 1 / float64(tc.n+1)
		t.Logf("N=%d→%d R=%d: join moved %d of %d pairs (%.3f, ideal %.3f)", tc.n, tc.n+1, tc.r, moved, total, share, ideal)
		if math.Abs(share-ideal) > 0.2*ideal {
			t.Errorf("join moved %.3f of the pairs, want about %.3f", share, ideal)
		}
		for u, owners := range joined {
			for _, o := range owners {
				if !slices.Contains(before[u], o) && o != newcomer {
					t.Fatalf("%v moved to %s, not to the newcomer", u, o)
				}
			}
		}
		// Leave: the last member goes; only its pairs move.
		left := Assign(units, members(tc.n + 1)[:tc.n], tc.r)
		moved, total = Moved(joined, left)
		share = float64(moved) / float64(total)
		t.Logf("N=%d→%d R=%d: leave moved %d of %d pairs (%.3f, ideal %.3f)", tc.n+1, tc.n, tc.r, moved, total, share, ideal)
		if math.Abs(share-ideal) > 0.2*ideal {
			t.Errorf("leave moved %.3f of the pairs, want about %.3f", share, ideal)
		}
		for u, owners := range joined {
			if !slices.Contains(owners, newcomer) && !slices.Equal(owners, left[u]) {
				t.Fatalf("%v changed owners %v → %v though the leaver did not carry it", u, owners, left[u])
			}
		}
	}
}

func TestMine(t *testing.T) {
	units := testUnits(300)
	ms := members(3)
	seen := map[Unit]int{}
	for _, m := range ms {
		for _, u := range Mine(units, ms, m, 2) {
			seen[u]++
		}
	}
	for _, u := range units {
		if seen[u] != 2 {
			t.Fatalf("%v carried by %d members, want 2", u, seen[u])
		}
	}
}
