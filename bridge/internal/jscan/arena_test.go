package jscan

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/qldata/mdbridge/bridge"
)

// TestArenaCopy: copies are equal to their source, share no memory with
// it, pack small strings into one chunk, and never change afterwards (a
// full chunk is left alone, not rewritten).
func TestArenaCopy(t *testing.T) {
	var a Arena
	src := []byte("16850.10000000")
	s := unsafe.String(&src[0], len(src))
	c := a.Copy(s)
	if c != "16850.10000000" || unsafe.StringData(c) == unsafe.StringData(s) {
		t.Fatalf("copy %q shares the source's memory or differs", c)
	}
	src[0] = '9'
	if c != "16850.10000000" {
		t.Fatalf("copy changed with its source: %q", c)
	}
	d := a.Copy("0.012")
	if unsafe.StringData(d) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(c)), len(c))) {
		t.Errorf("small copies are not packed into one chunk")
	}
	if a.Copy("") != "" {
		t.Error("empty copy")
	}
	var kept []string
	var want []string
	for i := range 3 * ArenaChunk / 10 { // several chunks
		v := strings.Repeat(string(rune('a'+i%26)), 1+i%9)
		kept = append(kept, a.Copy(v))
		want = append(want, v)
	}
	for i := range kept {
		if kept[i] != want[i] {
			t.Fatalf("copy %d changed: %q, want %q", i, kept[i], want[i])
		}
	}
	big := strings.Repeat("x", arenaMaxString+1)
	if b := a.Copy(big); b != big || unsafe.StringData(b) == unsafe.StringData(big) {
		t.Error("a long string is not copied")
	}
}

// TestArenasPool: the pool hands out usable arenas.
func TestArenasPool(t *testing.T) {
	var as Arenas
	a := as.Get()
	if a.Copy("x") != "x" {
		t.Fatal("copy")
	}
	as.Put(a)
	if as.Get() == nil {
		t.Fatal("nil arena")
	}
}

// TestArenaCopy3: the three copies equal their sources, share no memory
// with them, lie back to back in one chunk, survive a change of the
// source and the chunk filling up, and the long and empty cases work.
func TestArenaCopy3(t *testing.T) {
	var a Arena
	src := []byte("100000000000|16850.10000000|0.01200000")
	s := unsafe.String(&src[0], len(src))
	x, y, z := a.Copy3(s[:12], s[13:27], s[28:])
	if x != "100000000000" || y != "16850.10000000" || z != "0.01200000" {
		t.Fatalf("Copy3 = %q %q %q", x, y, z)
	}
	if unsafe.StringData(x) == unsafe.StringData(s) {
		t.Fatal("copy shares the source's memory")
	}
	if unsafe.StringData(y) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(x)), len(x))) ||
		unsafe.StringData(z) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(y)), len(y))) {
		t.Error("the three copies are not back to back")
	}
	for i := range src {
		src[i] = '#'
	}
	for range ArenaChunk { // several chunks
		a.Copy3("1", "22", "333")
	}
	if x != "100000000000" || y != "16850.10000000" || z != "0.01200000" {
		t.Fatalf("copies changed: %q %q %q", x, y, z)
	}
	if x, y, z := a.Copy3("", "", ""); x != "" || y != "" || z != "" {
		t.Error("empty copies")
	}
	if x, y, z := a.Copy3("", "5", ""); x != "" || y != "5" || z != "" {
		t.Errorf("Copy3 with empty parts = %q %q %q", x, y, z)
	}
	big := strings.Repeat("x", arenaMaxString)
	if x, y, z := a.Copy3("a", big, "b"); x != "a" || y != big || z != "b" || unsafe.StringData(y) == unsafe.StringData(big) {
		t.Error("long Copy3")
	}
}

// TestArenasExclusive: concurrent users never hold the same Arena at once
// (the slot and the pool behind it); run with -race.
func TestArenasExclusive(t *testing.T) {
	var as Arenas
	var held sync.Map
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				a := as.Get()
				if _, dup := held.LoadOrStore(a, g); dup {
					t.Error("one Arena handed to two users")
					return
				}
				v := string(rune('a' + (g+i)%26))
				if c := a.Copy(v); c != v {
					t.Errorf("copy %q, want %q", c, v)
				}
				held.Delete(a)
				as.Put(a)
			}
		}()
	}
	wg.Wait()
}

// TestArenasCopy3Concurrent: goroutines copying through one Arenas at once
// get back their own values, in disjoint memory, unchanged after every
// goroutine has gone on copying over several chunks (run with -race: the
// reserved ranges of one chunk never overlap), and the long and empty
// cases work.
func TestArenasCopy3Concurrent(t *testing.T) {
	var as Arenas
	const workers, rounds = 4, 3 * ArenaChunk / 20
	type kept struct{ x, y, z, wx, wy, wz string }
	out := make([][]kept, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := make([]byte, 0, 64)
			for i := range rounds {
				wx := strings.Repeat(string(rune('a'+g)), 1+i%12)
				wy := strings.Repeat(string(rune('A'+(i%26))), i%7) // sometimes empty
				wz := strings.Repeat(string(rune('0'+g)), 1+i%5)
				src = append(append(append(src[:0], wx...), wy...), wz...)
				s := unsafe.String(&src[0], len(src))
				x, y, z := as.Copy3(s[:len(wx)], s[len(wx):len(wx)+len(wy)], s[len(wx)+len(wy):])
				for j := range src {
					src[j] = '#' // the source buffer is reused
				}
				out[g] = append(out[g], kept{x, y, z, wx, wy, wz})
			}
		}()
	}
	wg.Wait()
	for g := range out {
		for i, k := range out[g] {
			if k.x != k.wx || k.y != k.wy || k.z != k.wz {
				t.Fatalf("worker %d copy %d = %q %q %q, want %q %q %q", g, i, k.x, k.y, k.z, k.wx, k.wy, k.wz)
			}
			if k.y != "" && unsafe.StringData(k.y) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(k.x)), len(k.x))) {
				t.Fatalf("worker %d copy %d: not back to back", g, i)
			}
		}
	}
	big := strings.Repeat("x", arenaMaxString)
	if x, y, z := as.Copy3("a", big, "b"); x != "a" || y != big || z != "b" || unsafe.StringData(y) == unsafe.StringData(big) {
		t.Error("long Copy3")
	}
	if x, y, z := as.Copy3("", "", ""); x != "" || y != "" || z != "" {
		t.Error("empty Copy3")
	}
}

// TestArenaCopySides: the copied sides equal their sources, share no
// memory with the frame they were read from, are capacity-limited (an
// append to one cannot reach the other or a later frame's levels), stay
// unchanged while later frames fill and replace the chunks, and empty
// sides are nil; sides over the packed limits (levels or text) work too.
func TestArenaCopySides(t *testing.T) {
	var a Arena
	frame := []byte("30247.20|30.028|30245.40|0.224|30248.70|0")
	s := unsafe.String(&frame[0], len(frame))
	bids := []bridge.Level{{s[0:8], s[9:15]}, {s[16:24], s[25:30]}}
	asks := []bridge.Level{{s[31:39], s[40:]}}
	ob, oa := a.CopySides(bids, asks)
	want := fmt.Sprint(bids, asks)
	for i := range frame {
		frame[i] = '#'
	}
	if got := fmt.Sprint(ob, oa); got != want {
		t.Fatalf("CopySides = %s, want %s (changed with the frame)", got, want)
	}
	if cap(ob) != 2 || cap(oa) != 1 {
		t.Fatalf("capacities %d %d, want 2 1", cap(ob), cap(oa))
	}
	if b, a := a.CopySides(nil, asks[:0]); b != nil || a != nil {
		t.Fatalf("empty sides %v %v, want nil", b, a)
	}
	type kept struct {
		b, a []bridge.Level
		want string
	}
	var all []kept
	for i := range 3 * LevelChunk {
		n := 1 + i%(LevelChunk/2) // some over LevelChunk/4
		var b, as []bridge.Level
		for j := range n {
			l := bridge.Level{strconv.Itoa(i) + "." + strconv.Itoa(j), strings.Repeat("1", 1+j%70)}
			if j%2 == 0 {
				b = append(b, l)
			} else {
				as = append(as, l)
			}
		}
		w := fmt.Sprint(b, as)
		ob, oa := a.CopySides(b, as)
		for j := range b {
			b[j] = bridge.Level{"x", "x"}
		}
		all = append(all, kept{ob, oa, w})
	}
	for i, k := range all {
		if got := fmt.Sprint(k.b, k.a); got != k.want {
			t.Fatalf("frame %d: %s, want %s", i, got, k.want)
		}
	}
}

// TestFastLevels: Levels reads level arrays up to cap(dst) and fails on
// more, on a non-decimal or on any other shape.
func TestFastLevels(t *testing.T) {
	var buf [2]bridge.Level
	for _, c := range []struct {
		in   string
		want string
	}{
		{`[]`, "[]"},
		{`[["1.5","2"]]`, "[[1.5 2]]"},
		{`[["1.5","2"],["1","0"]]`, "[[1.5 2] [1 0]]"},
		{`[["1.5","2"],["1","0"],["3","4"]]`, "fail"},
		{`[["1.5","2"],]`, "fail"},
		{`[["1.5","2","3"]]`, "fail"},
		{`[["1.5"]]`, "fail"},
		{`[["1.","2"]]`, "fail"},
		{`[[ "1","2"]]`, "fail"},
		{`[["1","2"]`, "fail"},
		{`[["1","2","0","3"]]`, "fail"},
	} {
		f := NewFast(c.in)
		got := fmt.Sprint(f.Levels(buf[:]))
		if !f.Done() {
			got = "fail"
		}
		if got != c.want {
			t.Errorf("Levels(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestFastLevelsExtra: OKX's four-element levels keep price and size.
func TestFastLevelsExtra(t *testing.T) {
	var buf [2]bridge.Level
	for _, c := range []struct {
		in   string
		want string
	}{
		{`[]`, "[]"},
		{`[["8476.98","415","0","13"]]`, "[[8476.98 415]]"},
		{`[["8476.98","415","0","13"],["1","0","0","0"]]`, "[[8476.98 415] [1 0]]"},
		{`[["8476.98","415","0"]]`, "fail"},
		{`[["8476.98","415","0","13","1"]]`, "fail"},
		{`[["8476.98","415","0",13]]`, "fail"},
		{`[["8476.98","415","0","1\u0033"]]`, "fail"},
	} {
		f := NewFast(c.in)
		got := fmt.Sprint(f.LevelsExtra(buf[:], 2))
		if !f.Done() {
			got = "fail"
		}
		if got != c.want {
			t.Errorf("LevelsExtra(%s, 2) = %s, want %s", c.in, got, c.want)
		}
	}
}
