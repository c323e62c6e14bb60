package jscan

import (
	"strings"
	"sync"
	"testing"
	"unsafe"
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
