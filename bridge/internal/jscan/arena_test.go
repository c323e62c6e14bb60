package jscan

import (
	"strings"
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
