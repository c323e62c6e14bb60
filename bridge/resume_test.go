package bridge_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// resumerFunc adapts a function to bridge.TradeResumer and counts calls.
type resumerFunc struct {
	calls atomic.Int64
	f     func(ctx context.Context, exchange, symbol string) (int64, bool, error)
}

func (r *resumerFunc) LastTradeID(ctx context.Context, exchange, symbol string) (int64, bool, error) {
	r.calls.Add(1)
	return r.f(ctx, exchange, symbol)
}

// TestTradeResume starts Binance streams whose resumer reports a stored
// trade relative to the simulator's newest one: the trades after it must
// be emitted exactly once, in order, before and continuing into the live
// ones; without a usable answer the stream starts from the live trades.
//
// Not parallel: the cases run one after another before the parallel fault
// tests start, so that their simulators (400 trades/s) do not load the
// machine those tests share.
func TestTradeResume(t *testing.T) {
	const sym = "BTCUSDT"
	errStore := errors.New("store unreachable")
	tests := []struct {
		name     string
		quiet    bool  // no live trades after the stream starts
		offset   int64 // resumer answers newest generated id + offset
		ok       bool
		err      error
		backMax  int
		resumed  bool // the first emitted trade is the one after the answer
		missing  bool // BackfillMax cuts the gap: some ids counted missing
		minBack  uint64
		wantDups bool
	}{
		{name: "500 behind", offset: -500, ok: true, resumed: true, minBack: 400},
		{name: "quiet symbol", quiet: true, offset: -300, ok: true, resumed: true, minBack: 300},
		{name: "ahead of live", offset: 150, ok: true, resumed: true, wantDups: true},
		{name: "gap beyond BackfillMax", offset: -500, ok: true, backMax: 100, missing: true},
		{name: "no stored trade", offset: -500, ok: false},
		{name: "resumer error", offset: -500, ok: true, err: errStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.Binance, sym, 400, 0)}})
			eventually(t, 10*time.Second, "simulated trade history", func() bool {
				g, err := sim.Generated(exsim.Binance, sym, exsim.SeriesTrade)
				return err == nil && g.Last-g.First > 700
			})
			if tt.quiet {
				if err := sim.SetRates(exsim.Binance, sym, 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			var answered atomic.Int64
			res := &resumerFunc{f: func(_ context.Context, ex, s string) (int64, bool, error) {
				if ex != "binance" || s != sym {
					t.Errorf("resumer asked for %s %s", ex, s)
				}
				g, err := sim.Generated(exsim.Binance, sym, exsim.SeriesTrade)
				if err != nil {
					return 0, false, err
				}
				answered.Store(g.Last + tt.offset)
				return g.Last + tt.offset, tt.ok, tt.err
			}}
			col := newCollector()
			cfg := testStreamConfig(newBinance(t, sim, nil), bridge.ChannelTrade, sym)
			cfg.BackfillMax = tt.backMax
			cfg.TradeResumer = res
			s, err := bridge.NewStream(cfg, col, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			runStream(t, s)
			var gen exsim.Range
			if tt.quiet {
				gen, _ = sim.Generated(exsim.Binance, sym, exsim.SeriesTrade)
				eventually(t, 15*time.Second, "quiet symbol backfilled", func() bool {
					tr := col.tradesOf("binance", sym)
					return len(tr) > 0 && tr[len(tr)-1].Seq >= gen.Last
				})
			} else {
				eventually(t, 10*time.Second, "first trades", func() bool { return len(col.tradesOf("binance", sym)) > 0 })
				gen = quiesce(t, sim, col, "binance", exsim.Binance, sym)
			}
			if n := res.calls.Load(); n != 1 {
				t.Fatalf("resumer called %d times, want 1", n)
			}
			R := answered.Load()
			ords := tradeOrdinals(t, sim, exsim.Binance, sym, col.tradesOf("binance", sym))
			st := s.Stats()
			t.Logf("answer %d, first emitted %d, last %d; backfilled %d missing %d duplicates %d",
				R, ords[0], ords[len(ords)-1], st.Backfilled, st.Missing, st.Duplicates)
			switch {
			case tt.missing:
				for i := 1; i < len(ords); i++ {
					if ords[i] != ords[i-1]+1 {
						t.Fatalf("trade %d is %d after %d", i, ords[i], ords[i-1])
					}
				}
				if ords[len(ords)-1] != gen.Last {
					t.Fatalf("last trade %d, want %d", ords[len(ords)-1], gen.Last)
				}
				if got := int64(st.Missing); ords[0] != R+1+got || got == 0 {
					t.Fatalf("first trade %d with %d missing after the stored %d: the skipped ids must be counted", ords[0], got, R)
				}
			case tt.resumed:
				if ords[0] != R+1 {
					t.Fatalf("first trade %d, want %d (the one after the stored trade)", ords[0], R+1)
				}
				assertTradesExactlyOnce(t, ords, gen.Last)
				if st.Missing != 0 || st.Backfilled < tt.minBack {
					t.Fatalf("backfilled %d (want >= %d), missing %d", st.Backfilled, tt.minBack, st.Missing)
				}
				if tt.wantDups && st.Duplicates == 0 {
					t.Fatal("live trades at or before the stored id were not dropped as duplicates")
				}
			default: // starts from the live trades as without a resumer
				if ords[0] <= R+1 || st.Backfilled != 0 {
					t.Fatalf("first trade %d after stored %d, backfilled %d: the unusable answer was used", ords[0], R, st.Backfilled)
				}
				assertTradesExactlyOnce(t, ords, gen.Last)
			}
		})
	}
}

// TestTradeResumeNotAsked: venues without consecutive trade ids (Bybit) and
// streams without sequence tracking never ask the resumer.
func TestTradeResumeNotAsked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		vc    venueCase
		track bool
	}{
		{"bybit", venueCases[1], true},
		{"binance untracked", venueCases[0], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(tt.vc.venue, "BTCUSDT", 100, 0)}})
			ex := tt.vc.make(t, sim, nil)
			res := &resumerFunc{f: func(context.Context, string, string) (int64, bool, error) { return 1, true, nil }}
			col := newCollector()
			cfg := testStreamConfig(ex, bridge.ChannelTrade, "BTCUSDT")
			cfg.Resilience.SequenceTracking = tt.track
			cfg.TradeResumer = res
			s, err := bridge.NewStream(cfg, col, nil)
			if err != nil {
				t.Fatal(err)
			}
			runStream(t, s)
			eventually(t, 10*time.Second, "first trades", func() bool { return len(col.tradesOf(ex.Name(), "BTCUSDT")) > 0 })
			if n := res.calls.Load(); n != 0 {
				t.Fatalf("resumer called %d times", n)
			}
		})
	}
}

// TestTradeResumeShutdown: a stream stopped while the resumer hangs returns
// promptly.
func TestTradeResumeShutdown(t *testing.T) {
	t.Parallel()
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.Binance, "BTCUSDT", 10, 0)}})
	asked := make(chan struct{}, 1)
	res := &resumerFunc{f: func(ctx context.Context, _, _ string) (int64, bool, error) {
		asked <- struct{}{}
		<-ctx.Done()
		return 0, false, ctx.Err()
	}}
	cfg := testStreamConfig(newBinance(t, sim, nil), bridge.ChannelTrade, "BTCUSDT")
	cfg.TradeResumer = res
	s, err := bridge.NewStream(cfg, newCollector(), nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := runStream(t, s)
	<-asked
	// The resumer never returns on its own: a Shutdown that waited for it
	// would run into stop's deadline and fail the test with its error.
	stop()
}

// batchResumer is a resumerFunc that also answers bridge.BatchTradeResumer.
type batchResumer struct {
	resumerFunc
	batchCalls atomic.Int64
	batch      func(ctx context.Context, exchange string, symbols []string) (map[string]int64, error)
}

func (r *batchResumer) LastTradeIDs(ctx context.Context, exchange string, symbols []string) (map[string]int64, error) {
	r.batchCalls.Add(1)
	return r.batch(ctx, exchange, symbols)
}

// TestTradeResumeBatch: a starting stream whose resumer answers in batches
// asks the batch once for all its symbols, seeds those answered (0: no
// stored trade, the symbol starts from the live trades) and asks
// LastTradeID only for the symbol the batch left out.
func TestTradeResumeBatch(t *testing.T) {
	syms := []string{"BTCUSDT", "ETHUSDT", "BNBUSDT"}
	var markets []exsim.MarketConfig
	for _, s := range syms {
		markets = append(markets, market(exsim.Binance, s, 200, 0))
	}
	sim := startSim(t, exsim.Config{Markets: markets})
	gen := func(s string) int64 {
		g, err := sim.Generated(exsim.Binance, s, exsim.SeriesTrade)
		if err != nil {
			t.Error(err)
		}
		return g.Last
	}
	eventually(t, 10*time.Second, "simulated trade history", func() bool {
		for _, s := range syms {
			if g, err := sim.Generated(exsim.Binance, s, exsim.SeriesTrade); err != nil || g.Last-g.First < 400 {
				return false
			}
		}
		return true
	})
	var stored [3]atomic.Int64 // the answers, per symbol
	var asked atomic.Value
	res := &batchResumer{
		resumerFunc: resumerFunc{f: func(_ context.Context, ex, s string) (int64, bool, error) {
			if s != "BNBUSDT" {
				t.Errorf("LastTradeID asked for %s %s, answered by the batch", ex, s)
			}
			stored[2].Store(gen(s) - 200)
			return stored[2].Load(), true, nil
		}},
		batch: func(_ context.Context, ex string, symbols []string) (map[string]int64, error) {
			asked.Store(append([]string(nil), symbols...))
			stored[0].Store(gen("BTCUSDT") - 300)
			stored[1].Store(gen("ETHUSDT")) // the newest trade before the stream starts
			// ETHUSDT: no stored trade; BNBUSDT left out.
			return map[string]int64{"BTCUSDT": stored[0].Load(), "ETHUSDT": 0}, nil
		},
	}
	col := newCollector()
	cfg := testStreamConfig(newBinance(t, sim, nil), bridge.ChannelTrade, syms...)
	cfg.TradeResumer = res
	s, err := bridge.NewStream(cfg, col, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	eventually(t, 10*time.Second, "first trades", func() bool {
		for _, sym := range syms {
			if len(col.tradesOf("binance", sym)) == 0 {
				return false
			}
		}
		return true
	})
	if n, m := res.batchCalls.Load(), res.calls.Load(); n != 1 || m != 1 {
		t.Fatalf("LastTradeIDs called %d times, LastTradeID %d; want 1 and 1 (the symbol left out)", n, m)
	}
	if got, _ := asked.Load().([]string); len(got) != len(syms) {
		t.Fatalf("batch asked for %v, want %v", got, syms)
	}
	for i, sym := range syms {
		last := quiesce(t, sim, col, "binance", exsim.Binance, sym)
		ords := tradeOrdinals(t, sim, exsim.Binance, sym, col.tradesOf("binance", sym))
		assertTradesExactlyOnce(t, ords, last.Last)
		switch R := stored[i].Load(); {
		case i == 1: // no stored trade: from the live trades, nothing backfilled
			if ords[0] <= R {
				t.Errorf("%s: first trade %d, generated before the stream started (%d): want a live one", sym, ords[0], R)
			}
		case ords[0] != R+1:
			t.Errorf("%s: first trade %d, want %d (the one after the stored trade)", sym, ords[0], R+1)
		}
	}
}
