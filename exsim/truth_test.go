package exsim

import (
	"errors"
	"reflect"
	"testing"
)

// TestClosedConnsBounded churns connections that each receive some trades
// and checks that only the last Config.ClosedConns closed records are
// kept while the ground truth still counts what the forgotten ones got.
func TestClosedConnsBounded(t *testing.T) {
	for _, tc := range []struct {
		limit, conns, kept int
	}{
		{limit: 3, conns: 8, kept: 3},
		{limit: -1, conns: 5, kept: 5},
	} {
		s := startServer(t, Config{Seed: 30, ClosedConns: tc.limit})
		var want rangeSet
		var ids []uint64
		for range tc.conns {
			ws, id := binTradeConn(t, s)
			ids = append(ids, id)
			if err := s.Generate(Binance, "BTCUSDT", 5, 0); err != nil {
				t.Fatal(err)
			}
			gen, _ := s.Generated(Binance, "BTCUSDT", SeriesTrade)
			for {
				tid := num(t, readObj(t, ws)["t"])
				want.add(tid, tid)
				if tid == gen.Last {
					break
				}
			}
			ws.Close()
			waitFor(t, "connection end", func() bool { return s.Stats().Open == 0 })
			// Trades nobody receives.
			if err := s.Generate(Binance, "BTCUSDT", 3, 0); err != nil {
				t.Fatal(err)
			}
		}

		conns := s.Conns()
		var listed []uint64
		for _, c := range conns {
			listed = append(listed, c.ID)
		}
		if !reflect.DeepEqual(listed, ids[tc.conns-tc.kept:]) {
			t.Fatalf("limit %d: Conns lists %v, want the last %d of %v", tc.limit, listed, tc.kept, ids)
		}
		if got := s.Stats().ForgottenConns; got != uint64(tc.conns-tc.kept) {
			t.Errorf("limit %d: ForgottenConns %d, want %d", tc.limit, got, tc.conns-tc.kept)
		}
		s.mu.Lock()
		nrec := len(s.recs)
		s.mu.Unlock()
		if nrec != tc.kept {
			t.Errorf("limit %d: %d records kept, want %d", tc.limit, nrec, tc.kept)
		}
		_, err := s.Delivered(ids[0], Binance, "BTCUSDT", SeriesTrade)
		if forgot := tc.kept < tc.conns; forgot != errors.Is(err, ErrUnknownConn) {
			t.Errorf("limit %d: Delivered on the first connection: %v", tc.limit, err)
		}

		tr, err := s.Truth(Binance, "BTCUSDT")
		if err != nil {
			t.Fatal(err)
		}
		ts := tr.Get(SeriesTrade)
		if !reflect.DeepEqual(ts.Delivered, want.rs) {
			t.Errorf("limit %d: Delivered %v, want %v", tc.limit, ts.Delivered, want.rs)
		}
		if u := subtractRanges(ts.Generated, want.rs); !reflect.DeepEqual(ts.Undelivered, u) {
			t.Errorf("limit %d: Undelivered %v, want %v", tc.limit, ts.Undelivered, u)
		}
		if len(ts.Undelivered) != tc.conns {
			t.Errorf("limit %d: %d undelivered ranges, want one per gap between connections (%d)", tc.limit, len(ts.Undelivered), tc.conns)
		}
		if len(ts.PerConn) != tc.kept {
			t.Errorf("limit %d: PerConn has %d connections, want %d", tc.limit, len(ts.PerConn), tc.kept)
		}
	}
}
