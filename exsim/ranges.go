package exsim

import "sort"

// Range is an inclusive range of ids [First, Last]. A Range with Last <
// First is empty.
type Range struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

// Len returns the number of ids in r.
func (r Range) Len() int64 {
	if r.Last < r.First {
		return 0
	}
	return r.Last - r.First + 1
}

// Empty reports whether r holds no id.
func (r Range) Empty() bool { return r.Last < r.First }

// Contains reports whether id is in r.
func (r Range) Contains(id int64) bool { return id >= r.First && id <= r.Last }

// rangeSet is a set of ids kept as sorted, disjoint, non-adjacent ranges.
// Appending ids in ascending order (the common case) is O(1) and memory
// grows only with the number of holes, so a million consecutive ids cost
// one Range. Not safe for concurrent use.
type rangeSet struct {
	rs []Range
}

// add inserts [lo, hi] (lo <= hi).
func (s *rangeSet) add(lo, hi int64) {
	if hi < lo {
		return
	}
	n := len(s.rs)
	if n == 0 {
		s.rs = append(s.rs, Range{lo, hi})
		return
	}
	last := &s.rs[n-1]
	if lo > last.Last+1 {
		s.rs = append(s.rs, Range{lo, hi})
		return
	}
	if lo >= last.First {
		if hi > last.Last {
			last.Last = hi
		}
		return
	}
	s.insertSlow(lo, hi)
}

func (s *rangeSet) insertSlow(lo, hi int64) {
	// First range that could touch [lo, hi]: Last >= lo-1.
	i := sort.Search(len(s.rs), func(k int) bool { return s.rs[k].Last >= lo-1 })
	j := i
	for j < len(s.rs) && s.rs[j].First <= hi+1 {
		lo = min(lo, s.rs[j].First)
		hi = max(hi, s.rs[j].Last)
		j++
	}
	if i == j {
		s.rs = append(s.rs, Range{})
		copy(s.rs[i+1:], s.rs[i:])
		s.rs[i] = Range{lo, hi}
		return
	}
	s.rs[i] = Range{lo, hi}
	s.rs = append(s.rs[:i+1], s.rs[j:]...)
}

// ranges returns a copy of the ranges.
func (s *rangeSet) ranges() []Range { return append([]Range(nil), s.rs...) }

// count returns the number of ids in the set.
func (s *rangeSet) count() int64 {
	var n int64
	for _, r := range s.rs {
		n += r.Len()
	}
	return n
}

// contains reports whether id is in the set.
func (s *rangeSet) contains(id int64) bool {
	i := sort.Search(len(s.rs), func(k int) bool { return s.rs[k].Last >= id })
	return i < len(s.rs) && s.rs[i].First <= id
}

// unionRanges merges sorted or unsorted range lists into one normalized list.
func unionRanges(lists ...[]Range) []Range {
	var s rangeSet
	for _, l := range lists {
		for _, r := range l {
			s.add(r.First, r.Last)
		}
	}
	return s.rs
}

// subtractRanges returns the ids of r that are in none of the (normalized)
// ranges of del.
func subtractRanges(r Range, del []Range) []Range {
	var out []Range
	cur := r.First
	for _, d := range del {
		if d.Last < cur {
			continue
		}
		if d.First > r.Last {
			break
		}
		if d.First > cur {
			out = append(out, Range{cur, d.First - 1})
		}
		cur = d.Last + 1
		if cur > r.Last {
			return out
		}
	}
	if cur <= r.Last {
		out = append(out, Range{cur, r.Last})
	}
	return out
}
