package bybit

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
	"github.com/qldata/mdbridge/exsim"
)

// Tests of the adapter against the exchange simulator (exsim).

func startSim(t *testing.T, cfg exsim.Config) *exsim.Server {
	t.Helper()
	if cfg.Markets == nil {
		cfg.Markets = []exsim.MarketConfig{{Venue: exsim.BybitSpot, Symbol: "BTCUSDT"}, {Venue: exsim.BybitLinear, Symbol: "BTCUSDT"},
			{Venue: exsim.BybitSpot, Symbol: "ETHUSDT"}}
	}
	return adaptertest.StartSim(t, cfg)
}

func simAdapter(t *testing.T, s *exsim.Server, cfg Config) (*Adapter, *adaptertest.CountingTransport) {
	t.Helper()
	ct := &adaptertest.CountingTransport{}
	cfg.WSURL, cfg.RESTURL = s.BybitWSURL(), s.BybitRESTURL()
	cfg.HTTPClient = &http.Client{Transport: ct, Timeout: 10 * time.Second}
	if cfg.Limiter == nil {
		cfg.Limiter = adaptertest.NewLimiter(t, 100000)
	}
	return newTest(t, cfg), ct
}

func venueOf(market string) exsim.Venue {
	if market == MarketLinear {
		return exsim.BybitLinear
	}
	return exsim.BybitSpot
}

func TestSimREST(t *testing.T) {
	s := startSim(t, exsim.Config{Seed: 11, ClockSkew: -2 * time.Second})
	for _, market := range []string{MarketSpot, MarketLinear} {
		t.Run(market, func(t *testing.T) {
			v := venueOf(market)
			a, _ := simAdapter(t, s, Config{Market: market, BookDepth: 200})
			if err := s.Generate(v, "BTCUSDT", 300, 30); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			sent := time.Now()
			ev, err := a.Snapshot(ctx, "BTCUSDT")
			got := time.Now()
			if err != nil {
				t.Fatal(err)
			}
			if ev.Exchange != a.Name() || len(ev.Bids) != 200 || len(ev.Asks) != 200 || ev.LastID <= 0 || ev.Seq <= 0 {
				t.Errorf("snapshot %s: LastID %d Seq %d, %d bids, %d asks", ev.Exchange, ev.LastID, ev.Seq, len(ev.Bids), len(ev.Asks))
			}
			// Times come from the skewed server clock: 2 s behind local time
			// while the request was out (Bybit's ts has millisecond precision).
			if ts, lo, hi := time.Unix(0, ev.TS), sent.Add(-2*time.Second-time.Millisecond), got.Add(-2*time.Second); ts.Before(lo) || ts.After(hi) {
				t.Errorf("snapshot ts %v outside [%v, %v]", ts, lo, hi)
			}
			before := time.Now()
			st, err := a.ServerTime(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if lo, hi := before.Add(-2*time.Second), time.Now().Add(-2*time.Second); st.Before(lo) || st.After(hi) {
				t.Errorf("server time %v outside [%v, %v]", st, lo, hi)
			}
			recent, err := a.RecentTrades(ctx, "BTCUSDT", 1000)
			if err != nil {
				t.Fatal(err)
			}
			want := 60
			if market == MarketLinear {
				want = 300
			}
			gen, _ := s.Generated(v, "BTCUSDT", exsim.SeriesTrade)
			if len(recent) != want {
				t.Fatalf("%d recent trades, want %d", len(recent), want)
			}
			// Oldest first, ending at the last generated trade, no gaps.
			for i, ev := range recent {
				ord, ok := s.BybitTradeOrdinal(v, "BTCUSDT", ev.ID)
				if !ok || ord != gen.Last-int64(len(recent)-1-i) {
					t.Fatalf("trade %d id %q is ordinal %d (%v), want %d", i, ev.ID, ord, ok, gen.Last-int64(len(recent)-1-i))
				}
			}
			var ae *APIError
			if _, err := a.Snapshot(ctx, "NOPEUSDT"); !errors.As(err, &ae) || ae.RetCode != 10001 {
				t.Errorf("unknown symbol: err = %v", err)
			}
		})
	}
}

// TestSimRateLimits: a 403 (the simulator's IP ban after too many
// requests) pauses the limiter for 10 minutes; 429 and 5xx faults.
func TestSimRateLimits(t *testing.T) {
	s := startSim(t, exsim.Config{BybitRequestLimit: 3})
	a, ct := simAdapter(t, s, Config{})
	ctx := context.Background()
	for i := range 3 {
		if _, err := a.ServerTime(ctx); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err := a.ServerTime(ctx)
	var rl *bridge.RateLimitError
	if !errors.As(err, &rl) || rl.Status != 403 || !rl.Banned || rl.RetryAfter != 10*time.Minute {
		t.Fatalf("err = %v, want the 403 ban", err)
	}
	if d := time.Until(a.Limiter().PausedUntil()); d < 9*time.Minute {
		t.Errorf("paused for %v, want 10 minutes", d)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := a.RecentTrades(short, "BTCUSDT", 10); !errors.Is(err, context.DeadlineExceeded) || ct.N.Load() != 4 {
		t.Errorf("during the ban: err %v, %d requests sent (want 4)", err, ct.N.Load())
	}

	s2 := startSim(t, exsim.Config{})
	b, _ := simAdapter(t, s2, Config{Market: MarketLinear})
	if _, err := s2.InjectFault(exsim.Fault{Kind: exsim.FaultREST, Status: 503, Count: 1}); err != nil {
		t.Fatal(err)
	}
	var ae *APIError
	if _, err := b.Snapshot(ctx, "BTCUSDT"); !errors.As(err, &ae) || ae.Status != 503 {
		t.Fatalf("503: err = %v", err)
	}
	if _, err := s2.InjectFault(exsim.Fault{Kind: exsim.FaultREST, Status: 429, Count: 1, Duration: exsim.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := b.Snapshot(ctx, "BTCUSDT"); !errors.As(err, &rl) || rl.Status != 429 || rl.RetryAfter != time.Second {
		t.Fatalf("429: err = %v", err)
	}
	if _, err := b.Snapshot(ctx, "BTCUSDT"); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("request sent %v after the 429, before Retry-After", d)
	}
}

func readDecode(t *testing.T, a *Adapter, ws *websocket.Conn) ([]bridge.Event, bridge.Frame) {
	t.Helper()
	b := adaptertest.ReadFrame(t, ws)
	evs, fr, err := a.Decode(b, time.Now().UnixNano(), nil)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return evs, fr
}

// TestSimStream: subscribe acks, pongs, subscribe failures, and frames that
// decode into exactly the generated trades and a snapshot followed by
// contiguous deltas, for spot and linear.
func TestSimStream(t *testing.T) {
	for _, market := range []string{MarketSpot, MarketLinear} {
		t.Run(market, func(t *testing.T) {
			s := startSim(t, exsim.Config{Seed: 5})
			v := venueOf(market)
			a, _ := simAdapter(t, s, Config{Market: market})
			topics := []bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}, {Symbol: "BTCUSDT", Channel: bridge.ChannelBook}}
			ws := adaptertest.DialSim(t, a.URL(topics))
			id := int64(0)
			next := func() int64 { id++; return id }
			for _, f := range a.SubscribeFrames(topics, next) {
				if err := ws.WriteMessage(websocket.TextMessage, f); err != nil {
					t.Fatal(err)
				}
			}
			// The ack, then the book snapshot (order between them not assumed).
			var acked bool
			var book int64 = -1
			for !acked || book < 0 {
				evs, fr := readDecode(t, a, ws)
				switch {
				case fr.Kind == bridge.FrameAck && fr.ReqID == "1":
					acked = true
				case fr.Kind == bridge.FrameData && len(evs) == 1 && evs[0].Type == bridge.EventBookSnapshot:
					book = evs[0].LastID
				default:
					t.Fatalf("unexpected frame %+v %+v", fr, evs)
				}
			}
			if err := ws.WriteMessage(websocket.TextMessage, a.Heartbeat().ClientPing(next())); err != nil {
				t.Fatal(err)
			}
			if _, fr := readDecode(t, a, ws); fr.Kind != bridge.FramePong || fr.ReqID != strconv.FormatInt(id, 10) {
				t.Fatalf("ping reply %+v", fr)
			}
			bad := a.SubscribeFrames([]bridge.Topic{{Symbol: "NOPEUSDT", Channel: bridge.ChannelTrade}}, next)
			if err := ws.WriteMessage(websocket.TextMessage, bad[0]); err != nil {
				t.Fatal(err)
			}
			if _, fr := readDecode(t, a, ws); fr.Kind != bridge.FrameError || !errors.Is(fr.Err, bridge.ErrExchange) {
				t.Fatalf("bad subscribe reply %+v", fr)
			}

			if err := s.Generate(v, "BTCUSDT", 2000, 30); err != nil {
				t.Fatal(err)
			}
			gen, _ := s.Generated(v, "BTCUSDT", exsim.SeriesTrade)
			ob, _ := s.Generated(v, "BTCUSDT", exsim.SeriesOrderbook(50))
			ord := gen.First - 1
			for ord < gen.Last || book < ob.Last {
				evs, fr := readDecode(t, a, ws)
				if fr.Kind != bridge.FrameData {
					t.Fatalf("frame %+v", fr)
				}
				for _, ev := range evs {
					if ev.Exchange != a.Name() || ev.Symbol != "BTCUSDT" {
						t.Fatalf("event %s %s", ev.Exchange, ev.Symbol)
					}
					switch ev.Type {
					case bridge.EventTrade:
						o, ok := s.BybitTradeOrdinal(v, "BTCUSDT", ev.ID)
						if !ok || o != ord+1 {
							t.Fatalf("trade %q is ordinal %d, want %d", ev.ID, o, ord+1)
						}
						ord = o
					case bridge.EventBookDelta:
						if ev.FirstID != book+1 || ev.LastID != ev.FirstID || ev.Seq <= 0 {
							t.Fatalf("delta u %d after %d (seq %d)", ev.LastID, book, ev.Seq)
						}
						book = ev.LastID
					default:
						t.Fatalf("event %v", ev.Type)
					}
				}
			}
			// Resnapshot fault: a fresh snapshot resets the book.
			if _, err := s.InjectFault(exsim.Fault{Kind: exsim.FaultResnapshot, Venue: v}); err != nil {
				t.Fatal(err)
			}
			evs, fr := readDecode(t, a, ws)
			if fr.Kind != bridge.FrameData || len(evs) != 1 || evs[0].Type != bridge.EventBookSnapshot || len(evs[0].Bids) == 0 {
				t.Fatalf("after resnapshot: %+v %+v", fr, evs)
			}
		})
	}
}
