package binance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
	"github.com/qldata/mdbridge/exsim"
)

// Tests of the adapter against the exchange simulator (exsim),
// which speaks EXCHANGES.md: real frames and REST answers, rate limits and
// faults, with a ground truth to compare against.

func startSim(t *testing.T, cfg exsim.Config) *exsim.Server {
	t.Helper()
	if cfg.Markets == nil {
		cfg.Markets = []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "BTCUSDT"}, {Venue: exsim.Binance, Symbol: "ETHUSDT"}}
	}
	if cfg.InboundLimit == 0 {
		cfg.InboundLimit = -1
	}
	return adaptertest.StartSim(t, cfg)
}

func simAdapter(t *testing.T, s *exsim.Server, cfg Config) (*Adapter, *adaptertest.CountingTransport) {
	t.Helper()
	ct := &adaptertest.CountingTransport{}
	cfg.WSURL, cfg.RESTURL = s.BinanceWSURL(), s.BinanceRESTURL()
	cfg.HTTPClient = &http.Client{Transport: ct, Timeout: 10 * time.Second}
	if cfg.Limiter == nil {
		cfg.Limiter = adaptertest.NewLimiter(t, 100000)
	}
	return newTest(t, cfg), ct
}

func TestSimSnapshotAndTrades(t *testing.T) {
	s := startSim(t, exsim.Config{Seed: 7})
	a, _ := simAdapter(t, s, Config{BookDepth: 100})
	if err := s.Generate(exsim.Binance, "BTCUSDT", 200, 50); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ev, err := a.Snapshot(ctx, "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	depth, err := s.Generated(exsim.Binance, "BTCUSDT", exsim.SeriesDepth)
	if err != nil {
		t.Fatal(err)
	}
	if ev.LastID != depth.Last || len(ev.Bids) != 100 || len(ev.Asks) != 100 {
		t.Errorf("snapshot LastID %d (generated up to %d), %d bids, %d asks", ev.LastID, depth.Last, len(ev.Bids), len(ev.Asks))
	}
	for i := 1; i < len(ev.Bids); i++ {
		if num(t, ev.Bids[i][0]) >= num(t, ev.Bids[i-1][0]) || num(t, ev.Asks[i][0]) <= num(t, ev.Asks[i-1][0]) {
			t.Fatalf("levels not sorted at %d: %v %v", i, ev.Bids[i-1:i+1], ev.Asks[i-1:i+1])
		}
	}
	trades, err := s.Generated(exsim.Binance, "BTCUSDT", exsim.SeriesTrade)
	if err != nil {
		t.Fatal(err)
	}
	from := trades.First + 17
	got, err := a.Trades(ctx, "BTCUSDT", from, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("%d trades, want 50", len(got))
	}
	for i, ev := range got {
		if ev.Seq != from+int64(i) || ev.ID != strconv.FormatInt(ev.Seq, 10) {
			t.Fatalf("trade %d has id %q seq %d, want %d", i, ev.ID, ev.Seq, from+int64(i))
		}
	}
	if got, err := a.Trades(ctx, "BTCUSDT", trades.Last+1, 10); err != nil || len(got) != 0 {
		t.Errorf("trades after the last: %v, %d", err, len(got))
	}
	var ae *APIError
	if _, err := a.Snapshot(ctx, "NOPEUSDT"); !errors.As(err, &ae) || ae.Code != CodeBadSymbol {
		t.Errorf("unknown symbol: err = %v", err)
	}
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSimServerTimeSkew(t *testing.T) {
	s := startSim(t, exsim.Config{ClockSkew: 2 * time.Second})
	a, _ := simAdapter(t, s, Config{})
	before := time.Now()
	st, err := a.ServerTime(context.Background())
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	// The server's ms clock is 2 s ahead of ours, within the round trip
	// and millisecond truncation.
	if lo, hi := before.Add(2*time.Second-time.Millisecond), after.Add(2*time.Second); st.Before(lo) || st.After(hi) {
		t.Errorf("server time %v outside [%v, %v]", st, lo, hi)
	}
}

// TestSimRateLimitFaults: 429 and 418 answers pause the limiter for the
// Retry-After the simulator sent; nothing is sent meanwhile.
func TestSimRateLimitFaults(t *testing.T) {
	s := startSim(t, exsim.Config{})
	for _, c := range []struct {
		status int
		banned bool
	}{{429, false}, {418, true}} {
		a, ct := simAdapter(t, s, Config{})
		if _, err := s.InjectFault(exsim.Fault{Kind: exsim.FaultREST, Venue: exsim.Binance, Status: c.status, Count: 1, Duration: exsim.Duration(time.Second)}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := a.Snapshot(context.Background(), "BTCUSDT")
		var rl *bridge.RateLimitError
		if !errors.As(err, &rl) || rl.Status != c.status || rl.Banned != c.banned || rl.RetryAfter != time.Second {
			t.Fatalf("%d: err = %v", c.status, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err = a.ServerTime(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || ct.N.Load() != 1 {
			t.Fatalf("%d: during the pause: err %v, %d requests sent", c.status, err, ct.N.Load())
		}
		if _, err := a.ServerTime(context.Background()); err != nil {
			t.Fatalf("%d: after the pause: %v", c.status, err)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Errorf("%d: next request after %v, before Retry-After", c.status, waited)
		}
	}
}

// TestSimWeightLimit: the simulator's own weight accounting (a 429 once the
// minute's weight is spent) and the adapter's used-weight sync. Both count
// weight per wall-clock minute, so a run that crosses a minute boundary
// proves nothing either way: it is run again (a loaded machine can make the
// body slow), and only a run within one minute decides.
func TestSimWeightLimit(t *testing.T) {
	for try := 1; ; try++ {
		// Start with a few seconds of the minute left.
		if rest := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); rest < 3*time.Second {
			time.Sleep(rest + 100*time.Millisecond)
		}
		minute := time.Now().Truncate(time.Minute)
		err := simWeightLimit(t)
		if !time.Now().Truncate(time.Minute).Equal(minute) && try < 3 {
			t.Logf("run %d crossed a minute boundary (err %v); again", try, err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
}

func simWeightLimit(t *testing.T) error {
	s := startSim(t, exsim.Config{BinanceWeightLimit: 120})
	// Another client on the same IP spends 100 of the 120 (four depth
	// requests of weight 25).
	for range 4 {
		resp, err := http.Get(s.BinanceRESTURL() + "/api/v3/depth?symbol=BTCUSDT&limit=500")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	lim := adaptertest.NewLimiter(t, 120)
	a, ct := simAdapter(t, s, Config{Limiter: lim, BookDepth: 100})
	if _, err := a.ServerTime(context.Background()); err != nil {
		return err
	}
	if used := lim.UsedWeight(); used < 101 {
		return fmt.Errorf("UsedWeight %d after the exchange reported 101", used)
	}
	// 101 + 25 > 120: the limiter holds the snapshot for the next minute
	// instead of letting the exchange refuse it.
	b := newTest(t, Config{WSURL: a.cfg.WSURL, RESTURL: a.cfg.RESTURL, Limiter: lim, BookDepth: 500, HTTPClient: a.cfg.HTTPClient})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := b.Snapshot(ctx, "BTCUSDT"); !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("err = %v, want the limiter to hold the request", err)
	}
	if n := ct.N.Load(); n != 1 {
		return fmt.Errorf("%d requests sent, want 1", n)
	}
	// Without the local budget (a limiter that knows nothing), the
	// simulator refuses with 429 and Retry-After up to the next minute.
	c, _ := simAdapter(t, s, Config{BookDepth: 500})
	_, err := c.Snapshot(context.Background(), "BTCUSDT")
	var rl *bridge.RateLimitError
	if !errors.As(err, &rl) || rl.Status != 429 || rl.RetryAfter <= 0 || rl.RetryAfter > time.Minute {
		return fmt.Errorf("err = %v, want 429", err)
	}
	if c.Limiter().PausedUntil().Before(time.Now()) {
		return errors.New("limiter not paused after the 429")
	}
	return nil
}

func readDecode(t *testing.T, a *Adapter, ws *websocket.Conn) ([]bridge.Event, bridge.Frame, error) {
	t.Helper()
	return a.Decode(adaptertest.ReadFrame(t, ws), time.Now().UnixNano(), nil)
}

// TestSimStream: the simulator's frames decode into exactly the generated
// trades (consecutive ids) and depth updates (contiguous U..u), over a
// combined-stream URL and over live SUBSCRIBE frames.
func TestSimStream(t *testing.T) {
	for _, viaSubscribe := range []bool{false, true} {
		t.Run(map[bool]string{false: "url", true: "subscribe"}[viaSubscribe], func(t *testing.T) {
			s := startSim(t, exsim.Config{Seed: 3})
			cfg := Config{MicrosecondTimestamps: viaSubscribe}
			if viaSubscribe {
				cfg.MaxURLBytes = 256 // the URL carries only the first topic
			}
			a, _ := simAdapter(t, s, cfg)
			topics := []bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}, {Symbol: "ETHUSDT", Channel: bridge.ChannelTrade},
				{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}, {Symbol: "ETHUSDT", Channel: bridge.ChannelBook}}
			if viaSubscribe {
				// Streams of unknown symbols fill the URL budget, so the
				// real ones go out as SUBSCRIBE frames.
				var pad []bridge.Topic
				for i := range 12 {
					pad = append(pad, bridge.Topic{Symbol: "PAD" + strconv.Itoa(i) + "USDT", Channel: bridge.ChannelTrade})
				}
				topics = append(pad, topics...)
			}
			ws := adaptertest.DialSim(t, a.URL(topics))
			id := int64(0)
			frames := a.SubscribeFrames(topics, func() int64 { id++; return id })
			if viaSubscribe != (len(frames) > 0) {
				t.Fatalf("%d subscribe frames", len(frames))
			}
			for _, f := range frames {
				if err := ws.WriteMessage(websocket.TextMessage, f); err != nil {
					t.Fatal(err)
				}
				_, fr, err := readDecode(t, a, ws)
				if err != nil || fr.Kind != bridge.FrameAck || fr.ReqID != strconv.FormatInt(id, 10) {
					t.Fatalf("subscribe reply: %+v %v", fr, err)
				}
			}
			waitSubscribed(t, s, len(topics))
			start := time.Now()
			for _, sym := range []string{"BTCUSDT", "ETHUSDT"} {
				if err := s.Generate(exsim.Binance, sym, 100, 40); err != nil {
					t.Fatal(err)
				}
			}
			want := map[string]int64{}
			lastTrade, lastDepth := map[string]int64{}, map[string]int64{}
			for _, sym := range []string{"BTCUSDT", "ETHUSDT"} {
				tr, _ := s.Generated(exsim.Binance, sym, exsim.SeriesTrade)
				dp, _ := s.Generated(exsim.Binance, sym, exsim.SeriesDepth)
				want[sym+"t"], want[sym+"d"] = tr.Last, dp.Last
				lastTrade[sym], lastDepth[sym] = tr.First-1, dp.First-1
			}
			for lastTrade["BTCUSDT"] < want["BTCUSDTt"] || lastTrade["ETHUSDT"] < want["ETHUSDTt"] ||
				lastDepth["BTCUSDT"] < want["BTCUSDTd"] || lastDepth["ETHUSDT"] < want["ETHUSDTd"] {
				evs, fr, err := readDecode(t, a, ws)
				if err != nil || fr.Kind != bridge.FrameData || len(evs) != 1 {
					t.Fatalf("frame: %+v, %d events, %v", fr, len(evs), err)
				}
				ev := evs[0]
				if ev.TS < start.Add(-time.Second).UnixNano() || ev.TS > time.Now().Add(time.Second).UnixNano() {
					t.Fatalf("event time %v not now (unit?)", time.Unix(0, ev.TS))
				}
				switch ev.Type {
				case bridge.EventTrade:
					if ev.Seq != lastTrade[ev.Symbol]+1 {
						t.Fatalf("%s trade %d after %d", ev.Symbol, ev.Seq, lastTrade[ev.Symbol])
					}
					lastTrade[ev.Symbol] = ev.Seq
				case bridge.EventBookDelta:
					if ev.FirstID != lastDepth[ev.Symbol]+1 || ev.LastID < ev.FirstID {
						t.Fatalf("%s depth %d..%d after %d", ev.Symbol, ev.FirstID, ev.LastID, lastDepth[ev.Symbol])
					}
					lastDepth[ev.Symbol] = ev.LastID
				default:
					t.Fatalf("event %v", ev.Type)
				}
			}
		})
	}
}

// TestSimFaultFrames: serverShutdown is FrameShutdown; every malformed
// frame mode the simulator injects is rejected with ErrMalformed.
func TestSimFaultFrames(t *testing.T) {
	s := startSim(t, exsim.Config{})
	a, _ := simAdapter(t, s, Config{MaxFrameBytes: 64 << 10})
	ws := adaptertest.DialSim(t, a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}}))
	waitSubscribed(t, s, 1)
	for _, mode := range []exsim.MalformedMode{exsim.MalformedInvalidJSON, exsim.MalformedWrongTypes, exsim.MalformedTruncated, exsim.MalformedOversized} {
		if _, err := s.InjectFault(exsim.Fault{Kind: exsim.FaultMalformed, Venue: exsim.Binance, Mode: mode, Count: 1, Size: 128 << 10}); err != nil {
			t.Fatal(err)
		}
		if err := s.Generate(exsim.Binance, "BTCUSDT", 1, 0); err != nil {
			t.Fatal(err)
		}
		for {
			evs, _, err := readDecode(t, a, ws)
			if err != nil {
				if !errors.Is(err, bridge.ErrMalformed) {
					t.Fatalf("%s: err = %v", mode, err)
				}
				break
			}
			if len(evs) == 0 {
				t.Fatalf("%s: frame decoded to nothing", mode)
			}
		}
		s.ClearFaults()
	}
	if _, err := s.InjectFault(exsim.Fault{Kind: exsim.FaultShutdown, Venue: exsim.Binance, Duration: exsim.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	for {
		evs, fr, err := readDecode(t, a, ws)
		if err != nil {
			t.Fatal(err)
		}
		if fr.Kind == bridge.FrameShutdown {
			break
		}
		if fr.Kind != bridge.FrameData || len(evs) == 0 {
			t.Fatalf("frame %+v", fr)
		}
	}
}

// waitSubscribed waits until an open connection has n streams: the
// simulator registers them after the handshake and after acking a
// SUBSCRIBE, so events generated earlier would not reach the test.
func waitSubscribed(t *testing.T, s *exsim.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range s.Conns() {
			if c.Open && len(c.Subscriptions) == n {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no connection with %d streams", n)
}
