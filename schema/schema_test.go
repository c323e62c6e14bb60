// Package schema_test keeps the JSON Schemas in this folder true to the
// wire: they must be valid draft 2020-12 schemas, every body the bridge
// writes for the simulator's Binance and Bybit feeds must validate, and
// bodies that break the contract must not.
package schema_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/bridge/okx"
	"github.com/qldata/mdbridge/exsim"
)

// base is the URI every schema's $id is relative to; a file's $id is
// base + its file name.
const base = "https://github.com/qldata/mdbridge/schema/"

const metaschema2020 = "https://json-schema.org/draft/2020-12/schema"

// files are the schema documents of this folder, the index first.
var files = []string{
	"event.schema.json",
	"trade.schema.json",
	"book.snapshot.schema.json",
	"book.delta.schema.json",
	"bbo.schema.json",
	"kline.schema.json",
	"ticker.schema.json",
	"liquidation.schema.json",
	"defs.schema.json",
}

// typeSchema names the schema file of each wire type.
var typeSchema = map[string]string{
	"trade":         "trade.schema.json",
	"book.snapshot": "book.snapshot.schema.json",
	"book.delta":    "book.delta.schema.json",
	"bbo":           "bbo.schema.json",
	"kline":         "kline.schema.json",
	"ticker":        "ticker.schema.json",
	"liquidation":   "liquidation.schema.json",
}

func decode(t testing.TB, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return v
}

// loadDocs reads every schema file, by file name.
func loadDocs(t testing.TB) map[string]any {
	t.Helper()
	names, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(files))
	if !slices.Equal(names, want) {
		t.Fatalf("schema files %q, want %q (update the test's list and README.md)", names, want)
	}
	docs := map[string]any{}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = decode(t, b)
	}
	return docs
}

// schemas are the compiled schemas, by file name.
type schemas map[string]*jsonschema.Schema

// compileAll compiles every file, resolving references only among the
// files of this folder (no network).
func compileAll(t testing.TB) schemas {
	t.Helper()
	docs := loadDocs(t)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noNetwork{})
	for name, doc := range docs {
		if err := c.AddResource(base+name, doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	out := schemas{}
	for _, name := range files {
		s, err := c.Compile(base + name)
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		out[name] = s
	}
	return out
}

// noNetwork refuses to load anything the compiler was not given.
type noNetwork struct{}

func (noNetwork) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema test loads nothing from the network: %s", url)
}

// validate checks body against the index schema and the schema of its
// type, and returns the index's verdict.
func (s schemas) validate(t testing.TB, body []byte) error {
	t.Helper()
	v := decode(t, body)
	err := s["event.schema.json"].Validate(v)
	if err != nil {
		return err
	}
	typ, _ := v.(map[string]any)["type"].(string)
	if err := s[typeSchema[typ]].Validate(v); err != nil {
		t.Fatalf("event.schema.json accepts %s, but %s rejects it: %v", body, typeSchema[typ], err)
	}
	return nil
}

func TestSchemasCompileAgainst2020_12(t *testing.T) {
	docs := loadDocs(t)
	meta, err := jsonschema.NewCompiler().Compile(metaschema2020)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		doc := docs[name].(map[string]any)
		if err := meta.Validate(doc); err != nil {
			t.Errorf("%s is not a valid 2020-12 schema: %v", name, err)
		}
		if doc["$schema"] != metaschema2020 {
			t.Errorf("%s: $schema %v, want %s", name, doc["$schema"], metaschema2020)
		}
		if doc["$id"] != base+name {
			t.Errorf("%s: $id %v, want %s", name, doc["$id"], base+name)
		}
		checkDescribed(t, name, "", doc)
	}
	compileAll(t)
}

// checkDescribed requires a title and a description on every subschema
// that is more than a bare reference (consumers generate documented types
// from them), walking properties, $defs, prefixItems, items and oneOf.
func checkDescribed(t *testing.T, file, ptr string, s map[string]any) {
	t.Helper()
	if _, isRef := s["$ref"]; !isRef || len(s) > 1 {
		for _, k := range []string{"title", "description"} {
			if v, _ := s[k].(string); strings.TrimSpace(v) == "" {
				t.Errorf("%s#%s: no %s", file, ptr, k)
			}
		}
	}
	for _, kw := range []string{"properties", "$defs"} {
		m, _ := s[kw].(map[string]any)
		for k, sub := range m {
			checkDescribed(t, file, ptr+"/"+kw+"/"+k, sub.(map[string]any))
		}
	}
	for _, kw := range []string{"prefixItems", "oneOf"} {
		l, _ := s[kw].([]any)
		for i, sub := range l {
			checkDescribed(t, file, fmt.Sprintf("%s/%s/%d", ptr, kw, i), sub.(map[string]any))
		}
	}
	if sub, ok := s["items"].(map[string]any); ok {
		checkDescribed(t, file, ptr+"/items", sub)
	}
}

// collector is a bridge.Publisher that encodes every event with AppendJSON
// as it arrives (the runner's slices are not kept) and counts types.
type collector struct {
	mu      sync.Mutex
	bodies  [][]byte
	types   map[bridge.EventType]int
	depths  map[int]int   // book events by Depth
	arrived chan struct{} // signalled (without blocking) after each Publish
}

func newCollector() *collector {
	return &collector{types: map[bridge.EventType]int{}, depths: map[int]int{}, arrived: make(chan struct{}, 1)}
}

func (c *collector) Publish(_ context.Context, evs []bridge.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range evs {
		c.bodies = append(c.bodies, evs[i].AppendJSON(nil))
		c.types[evs[i].Type]++
		if evs[i].Type == bridge.EventBookSnapshot || evs[i].Type == bridge.EventBookDelta {
			c.depths[evs[i].Depth]++
		}
	}
	select {
	case c.arrived <- struct{}{}:
	default:
	}
	return nil
}

// has reports whether c has at least n events of each type in want.
func (c *collector) has(want map[bridge.EventType]int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ty, n := range want {
		if c.types[ty] < n {
			return false
		}
	}
	return true
}

// feed is one bridge stream against the simulator.
type feed struct {
	name  string
	depth int // Bybit orderbook depth; 0 for Binance
	ex    func(sim *exsim.Server) (bridge.Exchange, error)
	// want is how many events of each type the feed must publish before
	// the test stops it: a few dozen trades and deltas (about a second of
	// the simulated market), the snapshot a book starts from. Bybit's
	// depth-1 stream is snapshots only (every push is the full top of
	// book), as on the venue.
	want map[bridge.EventType]int
	// channels are the channels beyond trade and book the feed takes.
	channels bridge.Channel
	sym      string // the symbol; "" for BTCUSDT
}

var allTypes = map[bridge.EventType]int{bridge.EventTrade: 50, bridge.EventBookSnapshot: 1, bridge.EventBookDelta: 50}

func bybitFeed(market string, depth int) feed {
	want := maps.Clone(allTypes)
	var ch bridge.Channel
	if depth == 1 {
		want = map[bridge.EventType]int{bridge.EventTrade: 50, bridge.EventBookSnapshot: 10}
	} else {
		// Every channel the market has (bbo needs a book deeper than 1).
		ch = bridge.ChannelBBO | bridge.KlineOpenChannel(bridge.Interval1m)
		want[bridge.EventBBO], want[bridge.EventKline] = 5, 3
		if market == bybit.MarketLinear {
			ch |= bridge.ChannelTicker | bridge.ChannelLiquidation
			want[bridge.EventTicker], want[bridge.EventLiquidation] = 5, 1
		}
	}
	return feed{
		channels: ch,
		name:     fmt.Sprintf("bybit-%s-depth%d", market, depth),
		depth:    depth,
		ex: func(sim *exsim.Server) (bridge.Exchange, error) {
			return bybit.New(bybit.Config{WSURL: sim.BybitWSURL(), RESTURL: sim.BybitRESTURL(), Market: market, BookDepth: depth}, discard)
		},
		want: want,
	}
}

// okxFeed is an OKX market with every channel it has.
func okxFeed(market, sym string) feed {
	want := maps.Clone(allTypes)
	ch := bridge.ChannelBBO | bridge.KlineOpenChannel(bridge.Interval1m)
	want[bridge.EventBBO], want[bridge.EventKline] = 5, 3
	name := okx.NameSpot
	if market == okx.MarketSwap {
		ch |= bridge.ChannelTicker | bridge.ChannelLiquidation
		want[bridge.EventTicker], want[bridge.EventLiquidation] = 5, 1
		name = okx.NameSwap
	}
	return feed{
		channels: ch,
		name:     name,
		sym:      sym,
		ex: func(sim *exsim.Server) (bridge.Exchange, error) {
			return okx.New(okx.Config{WSURL: sim.OKXWSURL(), RESTURL: sim.OKXRESTURL(), Market: market}, discard)
		},
		want: want,
	}
}

var discard = slog.New(slog.DiscardHandler)

// TestSimulatorEventsValidate runs real bridge streams against the
// simulator (Binance spot and USD-M; Bybit spot and linear at book depths
// 50 and 1)
// until each has published every type it can, and validates every body
// AppendJSON wrote for them.
func TestSimulatorEventsValidate(t *testing.T) {
	s := compileAll(t)
	const sym = "BTCUSDT"
	sim, err := exsim.New(exsim.Config{Seed: 16, KlineSpeed: 60, KlinePush: 100 * time.Millisecond, LiquidationRate: 10, Markets: []exsim.MarketConfig{
		{Venue: exsim.Binance, Symbol: sym, TradeRate: 50, BookRate: 50},
		{Venue: exsim.BybitSpot, Symbol: sym, TradeRate: 50, BookRate: 50},
		{Venue: exsim.BybitLinear, Symbol: sym, TradeRate: 50, BookRate: 50},
		{Venue: exsim.BinanceUSDM, Symbol: sym, TradeRate: 50, BookRate: 50},
		{Venue: exsim.OKXSpot, Symbol: "BTC-USDT", TradeRate: 50, BookRate: 50},
		{Venue: exsim.OKXSwap, Symbol: "BTC-USDT-SWAP", TradeRate: 50, BookRate: 50},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	simCtx, cancelSim := context.WithCancel(context.Background())
	if err := sim.Start(simCtx); err != nil {
		cancelSim()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancelSim()
		_ = sim.Close()
	})

	feeds := []feed{
		{name: "binance", ex: func(sim *exsim.Server) (bridge.Exchange, error) {
			return binance.New(binance.Config{WSURL: sim.BinanceWSURL(), RESTURL: sim.BinanceRESTURL()}, discard)
		}, want: map[bridge.EventType]int{bridge.EventTrade: 50, bridge.EventBookSnapshot: 1, bridge.EventBookDelta: 50,
			bridge.EventBBO: 5, bridge.EventKline: 3}, channels: bridge.ChannelBBO | bridge.KlineOpenChannel(bridge.Interval1m)},
		{name: "binance-usdm", ex: func(sim *exsim.Server) (bridge.Exchange, error) {
			return binance.New(binance.Config{Market: binance.MarketUSDM, WSURL: sim.BinanceUSDMWSURL(), RESTURL: sim.BinanceUSDMRESTURL()}, discard)
		}, want: map[bridge.EventType]int{bridge.EventTrade: 50, bridge.EventBookSnapshot: 1, bridge.EventBookDelta: 50,
			bridge.EventBBO: 5, bridge.EventKline: 3, bridge.EventTicker: 3, bridge.EventLiquidation: 1},
			channels: bridge.ChannelBBO | bridge.KlineOpenChannel(bridge.Interval1m) | bridge.ChannelTicker | bridge.ChannelLiquidation},
		bybitFeed(bybit.MarketSpot, 50),
		bybitFeed(bybit.MarketSpot, 1),
		bybitFeed(bybit.MarketLinear, 50),
		bybitFeed(bybit.MarketLinear, 1),
		okxFeed(okx.MarketSpot, "BTC-USDT"),
		okxFeed(okx.MarketSwap, "BTC-USDT-SWAP"),
	}
	type running struct {
		feed
		c    *collector
		s    *bridge.Stream
		errc chan error
	}
	var runs []running
	stopped := false
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		for _, r := range runs {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := r.s.Shutdown(ctx); err != nil {
				t.Errorf("%s: Shutdown: %v", r.name, err)
			}
			cancel()
			if err := <-r.errc; err != nil {
				t.Errorf("%s: Run: %v", r.name, err)
			}
		}
	}
	t.Cleanup(stopAll) // also when a later stream fails to start
	for _, f := range feeds {
		ex, err := f.ex(sim)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		c := newCollector()
		st, err := bridge.NewStream(bridge.StreamConfig{
			Exchange: ex, Symbols: []string{cmp.Or(f.sym, sym)}, Channels: bridge.ChannelTrade | bridge.ChannelBook | f.channels,
			Instance: "schema-test", ConnectSpacing: 5 * time.Millisecond,
		}, c, nil)

		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		r := running{feed: f, c: c, s: st, errc: make(chan error, 1)}
		go func() { r.errc <- st.Run(context.Background()) }()
		runs = append(runs, r)
	}

	// Wait until every feed has published every type it must, woken by
	// each Publish; the timeout only bounds a broken run.
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	for _, r := range runs {
		for !r.c.has(r.want) {
			select {
			case <-r.c.arrived:
			case <-timeout.C:
				r.c.mu.Lock()
				got := fmt.Sprint(r.c.types)
				r.c.mu.Unlock()
				t.Fatalf("%s: timed out waiting for %v; have %s", r.name, r.want, got)
			}
		}
	}
	stopAll()

	perVenue := map[string]map[string]int{}
	for _, r := range runs {
		r.c.mu.Lock()
		bodies := slices.Clone(r.c.bodies)
		depths := maps.Clone(r.c.depths)
		types := maps.Clone(r.c.types)
		r.c.mu.Unlock()
		// The depth field names the stream's series (Bybit) or is absent
		// (Binance): every book event of the feed carries the feed's depth.
		if len(depths) != 1 || depths[r.depth] == 0 {
			t.Errorf("%s: book events by depth %v, want all at %d", r.name, depths, r.depth)
		}
		venue := strings.SplitN(r.name, "-depth", 2)[0]
		if perVenue[venue] == nil {
			perVenue[venue] = map[string]int{}
		}
		for _, b := range bodies {
			if err := s.validate(t, b); err != nil {
				t.Errorf("%s: body does not validate: %s\n%v", r.name, b, err)
				continue
			}
			var head struct{ Type string }
			if err := json.Unmarshal(b, &head); err != nil {
				t.Fatal(err)
			}
			perVenue[venue][head.Type]++
		}
		t.Logf("%s: %d bodies (by type %v)", r.name, len(bodies), types)
	}
	for _, venue := range []string{"binance", "bybit-spot", "bybit-linear", "binance-usdm", "okx", "okx-swap"} {
		for typ := range typeSchema {
			if (typ == "ticker" || typ == "liquidation") && venue != "bybit-linear" && venue != "binance-usdm" && venue != "okx-swap" {
				continue // derivatives only
			}
			if perVenue[venue][typ] == 0 {
				t.Errorf("%s: no valid %s body (have %v)", venue, typ, perVenue[venue])
			}
		}
	}
}

// Hand-built events, as the venues produce them.
var (
	trade = bridge.Event{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT",
		TS: 1732400000123000000, RecvTS: 1732400000125114000,
		ID: "4187262101", Price: "97012.55", Qty: "0.00120", Side: bridge.SideBuy}
	delta = bridge.Event{Type: bridge.EventBookDelta, Exchange: "binance", Symbol: "BTCUSDT",
		TS: 1732400000123000000, RecvTS: 1732400000125114000, FirstID: 61023, LastID: 61025,
		Bids: []bridge.Level{{"97012.54", "1.2"}}, Asks: []bridge.Level{{"97012.56", "0.00000000"}}}
	snapshot = bridge.Event{Type: bridge.EventBookSnapshot, Exchange: "bybit-linear", Symbol: "BTCUSDT",
		TS: 1732400000123000000, RecvTS: 1732400000125114000, LastID: 1, Depth: 50,
		Bids: []bridge.Level{{"97012.5", "3"}}, Asks: []bridge.Level{{"97012.6", "0.5"}}}
)

// Hand-built channel events.
var (
	bbo = func() bridge.Event {
		e := bridge.Event{Type: bridge.EventBBO, Exchange: "binance", Symbol: "BTCUSDT", TS: 1, RecvTS: 2}
		e.SetBBO(bridge.BBO{BidPrice: "97012.54", BidQty: "1.2", AskPrice: "97012.56", AskQty: "0.5", UpdateID: 61025})
		return e
	}()
	kline = func() bridge.Event {
		e := bridge.Event{Type: bridge.EventKline, Exchange: "bybit", Symbol: "BTCUSDT", TS: 1732400059999000000, RecvTS: 2}
		e.SetBar(bridge.Bar{Interval: bridge.Interval1m, OpenTime: 1732400000000000000, CloseTime: 1732400059999000000,
			Open: "97000", High: "97100.5", Low: "96990", Close: "97050", Volume: "12.5", QuoteVolume: "1212500.25", Trades: -1, Closed: true})
		return e
	}()
	openKline = func() bridge.Event {
		e := kline
		e.Exchange = "binance"
		b := e.Bar()
		b.Closed, b.Trades = false, 17
		e.SetBar(b)
		return e
	}()
	ticker = func() bridge.Event {
		e := bridge.Event{Type: bridge.EventTicker, Exchange: "bybit-linear", Symbol: "BTCUSDT", TS: 1, RecvTS: 2}
		e.SetTicker(bridge.Ticker{LastPrice: "97000", MarkPrice: "97001.5", IndexPrice: "96999", FundingRate: "-0.000212",
			OpenInterest: "68744.761", NextFundingTime: 1732406400000000000, Seq: 24987956059})
		return e
	}()
	usdmTicker = func() bridge.Event {
		e := bridge.Event{Type: bridge.EventTicker, Exchange: "binance-usdm", Symbol: "BTCUSDT", TS: 1, RecvTS: 2}
		e.SetTicker(bridge.Ticker{MarkPrice: "97001.5", IndexPrice: "96999", FundingRate: "0.00010000", NextFundingTime: 1732406400000000000})
		return e
	}()
	emptyTicker = bridge.Event{Type: bridge.EventTicker, Exchange: "bybit-linear", Symbol: "BTCUSDT", TS: 1, RecvTS: 2, LastID: 5}
	liquidation = bridge.Event{Type: bridge.EventLiquidation, Exchange: "bybit-linear", Symbol: "BTCUSDT", TS: 1, RecvTS: 2,
		Side: bridge.SideSell, Price: "94666.30", Qty: "0.003", Seq: 1}
)

// mutate encodes ev with AppendJSON, applies f to the decoded object and
// re-encodes it (numbers kept as written).
func mutate(t *testing.T, ev bridge.Event, f func(m map[string]any)) []byte {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(ev.AppendJSON(nil)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func set(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
func del(k string) func(map[string]any)        { return func(m map[string]any) { delete(m, k) } }

func TestAccepts(t *testing.T) {
	s := compileAll(t)
	bybitDelta := delta
	bybitDelta.Exchange, bybitDelta.FirstID, bybitDelta.LastID, bybitDelta.Depth = "bybit", 7, 7, 1000
	empty := delta
	empty.Bids, empty.Asks = nil, nil
	maxTS := trade
	maxTS.TS, maxTS.RecvTS = 1<<63-1, 1<<63-1
	usdmDelta := delta
	usdmDelta.Exchange, usdmDelta.PrevID = "binance-usdm", 61020
	okxReset := snapshot
	okxReset.Exchange, okxReset.Symbol, okxReset.Depth, okxReset.Flags = "okx", "BTC-USDT", 0, bridge.FlagIDReset
	if !strings.Contains(string(okxReset.AppendJSON(nil)), `"reset":true`) {
		t.Fatalf("no reset in %s", okxReset.AppendJSON(nil))
	}
	sell := trade
	sell.Side, sell.Exchange, sell.ID = bridge.SideSell, "bybit-linear", "20f43950-d8dd-5b31-9112-a178eb6023af"
	// OKX: an open bar without push time (ts = open time), a ticker part's
	// merged state (seq = hash<<3 | tag, mark price only so far), a
	// liquidation in contracts.
	okxOpen := openKline
	okxOpen.Exchange, okxOpen.Symbol, okxOpen.TS, okxOpen.Seq = "okx", "BTC-USDT", okxOpen.FirstID, -1
	okxTicker := bridge.Event{Type: bridge.EventTicker, Exchange: "okx-swap", Symbol: "BTC-USDT-SWAP", TS: 1, RecvTS: 2}
	okxTicker.SetTicker(bridge.Ticker{MarkPrice: "42310.6", Seq: 4294967295<<3 | 1})
	okxLiq := liquidation
	okxLiq.Exchange, okxLiq.Symbol, okxLiq.Qty = "okx-swap", "BTC-USDT-SWAP", "13"
	for name, ev := range map[string]bridge.Event{
		"okx open kline": okxOpen, "okx ticker": okxTicker, "okx liquidation": okxLiq,
		"trade": trade, "sell": sell, "binance delta": delta, "bybit delta": bybitDelta,
		"bybit snapshot": snapshot, "empty delta": empty, "int64 max times": maxTS,
		"bbo": bbo, "closed kline": kline, "open kline": openKline, "ticker": ticker, "usdm ticker": usdmTicker, "empty ticker": emptyTicker,
		"liquidation": liquidation, "usdm delta": usdmDelta, "okx reset snapshot": okxReset,
	} {
		body := ev.AppendJSON(nil)
		if err := s.validate(t, body); err != nil {
			t.Errorf("%s: %s rejected: %v", name, body, err)
		}
	}
	// The README's examples.
	for _, body := range []string{
		`{"v":1,"type":"trade","exchange":"binance","symbol":"BTCUSDT","ts":1732400000123000000,"recv_ts":1732400000125114000,"id":"4187262101","price":"97012.55","qty":"0.00120","side":"buy"}`,
		`{"v":1,"type":"book.delta","exchange":"binance","symbol":"BTCUSDT","ts":1,"recv_ts":2,"first_id":61023,"last_id":61025,"bids":[["97012.54","1.2"]],"asks":[["97012.56","0"]]}`,
		`{"v":1,"type":"book.snapshot","exchange":"binance","symbol":"BTCUSDT","ts":1,"recv_ts":2,"last_id":61022,"bids":[],"asks":[]}`,
	} {
		if err := s.validate(t, []byte(body)); err != nil {
			t.Errorf("%s rejected: %v", body, err)
		}
	}
}

// errorAt reports whether err, a validation error, has a leaf cause at
// the instance location at (a JSON pointer, "" for the body itself).
func errorAt(err error, at string) bool {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	var walk func(*jsonschema.ValidationError) bool
	walk = func(e *jsonschema.ValidationError) bool {
		if len(e.Causes) == 0 {
			loc := ""
			for _, tok := range e.InstanceLocation {
				loc += "/" + tok
			}
			return loc == at
		}
		return slices.ContainsFunc(e.Causes, walk)
	}
	return walk(ve)
}

func TestRejects(t *testing.T) {
	s := compileAll(t)
	type tc struct {
		name string
		body []byte
		at   string // where the schema of the body's type reports the error
	}
	var cases []tc
	add := func(name string, ev bridge.Event, at string, f func(map[string]any)) {
		cases = append(cases, tc{name, mutate(t, ev, f), at})
	}
	// Every required field, missing.
	for _, ev := range []bridge.Event{trade, delta, snapshot, bbo, kline, ticker, liquidation} {
		var m map[string]any
		if err := json.Unmarshal(ev.AppendJSON(nil), &m); err != nil {
			t.Fatal(err)
		}
		for k := range m {
			if k == "depth" || k == "trades" || ev.Type == bridge.EventTicker && k != "seq" && !slices.Contains([]string{"v", "type", "exchange", "symbol", "ts", "recv_ts"}, k) {
				continue // optional
			}
			at := ""
			if k == "type" {
				at = "-" // no type: only the index applies
			}
			add(ev.Type.String()+" without "+k, ev, at, del(k))
		}
	}
	long := strings.Repeat("A", 65)
	add("extra field", trade, "", set("venue", "binance"))
	add("book field on a trade", trade, "", set("bids", []any{}))
	add("trade field on a delta", delta, "", set("price", "1"))
	add("first_id on a snapshot", snapshot, "", set("first_id", 1))
	add("float price", trade, "/price", set("price", json.Number("97012.55")))
	add("integer qty", trade, "/qty", set("qty", json.Number("1")))
	add("float level price", delta, "/bids/0/0", set("bids", []any{[]any{json.Number("97012.54"), "1.2"}}))
	add("exponent price", trade, "/price", set("price", "9.7e4"))
	add("negative qty", trade, "/qty", set("qty", "-1"))
	add("leading dot", trade, "/price", set("price", ".5"))
	add("trailing dot", trade, "/price", set("price", "5."))
	add("empty price", trade, "/price", set("price", ""))
	add("65-digit qty", trade, "/qty", set("qty", strings.Repeat("1", 65)))
	add("negative level qty", delta, "/asks/0/1", set("asks", []any{[]any{"1", "-0"}}))
	add("three-element level", delta, "/asks/0", set("asks", []any{[]any{"1", "2", "3"}}))
	add("one-element level", delta, "/asks/0", set("asks", []any{[]any{"1"}}))
	add("level as object", snapshot, "/bids/0", set("bids", []any{map[string]any{"price": "1", "qty": "2"}}))
	add("side BUY", trade, "/side", set("side", "BUY"))
	add("side Buy (Bybit's spelling)", trade, "/side", set("side", "Buy"))
	add("side empty", trade, "/side", set("side", ""))
	add("symbol with dot", trade, "/symbol", set("symbol", "BTC.USDT"))
	add("symbol with wildcard", trade, "/symbol", set("symbol", "BTC*"))
	add("symbol empty", delta, "/symbol", set("symbol", ""))
	add("symbol 65 chars", snapshot, "/symbol", set("symbol", long))
	add("exchange with >", trade, "/exchange", set("exchange", "binance>"))
	add("reset false", snapshot, "/reset", set("reset", false))
	add("reset as string", snapshot, "/reset", set("reset", "true"))
	add("reset on a delta", delta, "", set("reset", true))
	add("depth 7", snapshot, "/depth", set("depth", 7))
	add("depth 0", delta, "/depth", set("depth", 0))
	add("depth as string", delta, "/depth", set("depth", "50"))
	add("v 2", trade, "/v", set("v", 2))
	add("v as string", trade, "/v", set("v", "1"))
	add("unknown type", trade, "-", set("type", "candle"))
	add("trade typed book.delta", trade, "", set("type", "book.delta")) // book.delta's fields missing
	add("float ts", trade, "/ts", set("ts", json.Number("1.5")))
	add("negative recv_ts", trade, "/recv_ts", set("recv_ts", -1))
	add("ts beyond int64", trade, "/ts", set("ts", json.Number("9223372036854775808")))
	add("string last_id", delta, "/last_id", set("last_id", "61025"))
	add("negative first_id", delta, "/first_id", set("first_id", -1))
	add("numeric trade id", trade, "/id", set("id", 4187262101))
	add("bbo with trade price", bbo, "", set("price", "1"))
	add("bbo negative update id", bbo, "/update_id", set("update_id", -1))
	add("bbo float bid", bbo, "/bid_price", set("bid_price", json.Number("1.5")))
	add("kline interval 7m", kline, "/interval", set("interval", "7m"))
	add("kline Bybit interval name", kline, "/interval", set("interval", "60"))
	add("kline closed as string", kline, "/closed", set("closed", "true"))
	add("kline negative trades", kline, "/trades", set("trades", -1))
	add("kline empty high", kline, "/high", set("high", ""))
	add("ticker float mark", ticker, "/mark_price", set("mark_price", json.Number("1.5")))
	add("ticker funding with exponent", ticker, "/funding_rate", set("funding_rate", "1e-4"))
	add("ticker negative mark", ticker, "/mark_price", set("mark_price", "-1"))
	add("liquidation side long", liquidation, "/side", set("side", "long"))
	add("liquidation negative n", liquidation, "/n", set("n", -1))
	add("trade id with space", trade, "/id", set("id", "41 87"))
	// AppendJSON writes "" for SideUnknown; no adapter produces one (they
	// reject the trade as malformed), and the contract does not allow it.
	unknown := trade
	unknown.Side = bridge.SideUnknown
	cases = append(cases, tc{"AppendJSON of SideUnknown", unknown.AppendJSON(nil), "/side"})
	cases = append(cases, tc{"not an object", []byte(`[]`), "-"})

	for _, c := range cases {
		v := decode(t, c.body)
		if err := s["event.schema.json"].Validate(v); err == nil {
			t.Errorf("%s: event.schema.json accepts %s", c.name, c.body)
		}
		if c.at == "-" {
			continue
		}
		m, _ := v.(map[string]any)
		file := typeSchema[fmt.Sprint(m["type"])]
		err := s[file].Validate(v)
		if err == nil {
			t.Errorf("%s: %s accepts %s", c.name, file, c.body)
		} else if !errorAt(err, c.at) {
			t.Errorf("%s: %s rejects %s, but not at %q: %v", c.name, file, c.body, c.at, err)
		}
	}
}
