package bench

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

func TestSeqScannerChunks(t *testing.T) {
	stream := `MSG _INBOX.a.b 1 26` + "\r\n" + `{"stream":"MDBENCH","seq":1}` + "\r\n" +
		`MSG _INBOX.a.c 1 44` + "\r\n" + `{"stream":"MDBENCH","seq":23,"duplicate":true}` + "\r\n" +
		`PING` + "\r\n" + `MSG _INBOX.a.d 1 40` + "\r\n" + `{"stream":"MDBENCH","first_seq":7,"seq":456}` + "\r\n" +
		`MSG _INBOX.a.e 1 30` + "\r\n" + `{"error":{"code":503}}` + "\r\n" +
		`{"stream":"MDBENCH","seq":78901}` + "\r\n"
	want := []uint64{1, 23, 456, 78901}
	// Every split of the stream into two or three chunks finds the same
	// sequences.
	for i := 0; i <= len(stream); i++ {
		for _, j := range []int{i, min(i+1, len(stream)), min(i+3, len(stream)), len(stream)} {
			var sc seqScanner
			var got []uint64
			for _, part := range []string{stream[:i], stream[i:j], stream[j:]} {
				got = append(got, sc.feed([]byte(part))...)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("split at %d,%d: got %v, want %v", i, j, got, want)
			}
		}
	}
	// Byte by byte.
	var sc seqScanner
	var got []uint64
	for i := range len(stream) {
		got = append(got, sc.feed([]byte{stream[i]})...)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("byte by byte: got %v, want %v", got, want)
	}
}

func TestAckTapRecordsFirstAck(t *testing.T) {
	tap := newAckTap(nil)
	tap.record([]uint64{1}, 5) // before arm: cleared by arm
	tap.arm(4)
	tap.record([]uint64{2, 1}, 10)
	tap.record([]uint64{2, 3}, 20) // 2 again: a duplicate ack keeps the first time
	tap.record([]uint64{1 << 40}, 30)
	times, last, _ := tap.disarm()
	if want := []int64{0, 10, 10, 20}; !reflect.DeepEqual(times, want) {
		t.Errorf("times = %v, want %v", times, want)
	}
	if last != 30 {
		t.Errorf("last = %d, want 30", last)
	}
	if n := tap.acks.Load(); n != 5 {
		t.Errorf("acks = %d, want 5", n)
	}
}

// TestPubScanner follows PUB and HPUB messages through the client protocol
// however it is split into writes, payloads containing protocol-looking
// text included, and ignores other lines.
func TestPubScanner(t *testing.T) {
	stream := "CONNECT {\"verbose\":false}\r\nPING\r\n" +
		"HPUB md.a _INBOX.x.1 12 17\r\nNATS/1.0\r\n\r\nhello\r\n" +
		"SUB _INBOX.x.* 1\r\n" +
		"PUB md.b 15\r\nPUB md.c 3\r\nxyz\r\n" + // a payload that looks like a PUB line
		"HPUB md.d 12 12\r\nNATS/1.0\r\n\r\n\r\n" // empty body
	const want = 3
	for i := 0; i <= len(stream); i += 7 {
		for j := i; j <= len(stream); j += 11 {
			var p pubScanner
			got := 0
			for _, part := range []string{stream[:i], stream[i:j], stream[j:]} {
				got += p.feed([]byte(part))
			}
			if got != want {
				t.Fatalf("split at %d,%d: %d messages, want %d", i, j, got, want)
			}
		}
	}
	var p pubScanner
	got := 0
	for i := range len(stream) {
		got += p.feed([]byte{stream[i]})
	}
	if got != want {
		t.Fatalf("byte by byte: %d messages, want %d", got, want)
	}
	tap := newAckTap(nil)
	tap.recordWrites(1, 5) // before arm: cleared by arm
	tap.arm(2)
	tap.recordWrites(2, 10)
	tap.recordWrites(1, 20)
	if _, _, writes := tap.disarm(); !reflect.DeepEqual(writes, []int64{0, 10, 10, 20}) {
		t.Errorf("writes = %v", writes)
	}
}

func TestLatencyOf(t *testing.T) {
	var ns []int64
	for i := 1000; i >= 1; i-- {
		ns = append(ns, int64(i)*1000) // 1..1000 µs, unsorted
	}
	l := latencyOf(ns, 2)
	want := Latency{Samples: 1000, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000, Unmatched: 2}
	if l != want {
		t.Errorf("latencyOf = %+v, want %+v", l, want)
	}
	if got := latencyOf(nil, 0); got != (Latency{}) {
		t.Errorf("empty: %+v", got)
	}
}

func TestCPUByLabel(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("CPU profiler busy: %v", err) // e.g. go test -cpuprofile
	}
	// Burn 200 ms of CPU (not wall time: the machine may be busy).
	burn := func(d time.Duration) {
		x := 0.0
		for start := cpuTime(); cpuTime()-start < d; {
			for i := range 10000 {
				x += math.Sqrt(float64(i))
			}
		}
		_ = x
	}
	done := make(chan struct{})
	goComponent(context.Background(), compSim, func(context.Context) { burn(200 * time.Millisecond); close(done) })
	<-done
	pprof.StopCPUProfile()
	got, err := cpuByLabel(buf.Bytes(), labelKey)
	if err != nil {
		t.Fatal(err)
	}
	if got[compSim] <= 0 {
		t.Errorf("no CPU attributed to %q: %v", compSim, got)
	}
	if _, err := cpuByLabel([]byte("not gzip"), labelKey); !errors.Is(err, errProfile) {
		t.Errorf("garbage: err %v, want errProfile", err)
	}
}

func TestProtoFieldsRejectsTruncated(t *testing.T) {
	// field 2, length-delimited, length 10, but only 2 bytes follow.
	if err := protoFields([]byte{0x12, 10, 1, 2}, func(int, int, uint64, []byte) error { return nil }); !errors.Is(err, errProfile) {
		t.Errorf("err %v, want errProfile", err)
	}
}

func TestZipf(t *testing.T) {
	tests := []struct {
		n            int
		total, s, mx float64
	}{
		{1000, 2500, 0.9, 250},
		{1000, 2500, 0.5, 10},
		{10, 100, 1, 50},
		{3, 1000, 1, 100}, // caps bind everywhere: total not reachable
	}
	for _, tt := range tests {
		r := zipf(tt.n, tt.total, tt.s, tt.mx)
		sum := 0.0
		for i, v := range r {
			if v > tt.mx+1e-9 || v < 0 {
				t.Errorf("%+v: rate[%d] = %v outside [0, %v]", tt, i, v, tt.mx)
			}
			if i > 0 && v > r[i-1]+1e-9 {
				t.Errorf("%+v: not decreasing at %d", tt, i)
			}
			sum += v
		}
		want := math.Min(tt.total, float64(tt.n)*tt.mx)
		if math.Abs(sum-want) > 1e-6*want {
			t.Errorf("%+v: sum %v, want %v", tt, sum, want)
		}
	}
	ms := scaleMarkets(1000, 5000)
	total := 0.0
	for _, m := range ms {
		total += m.TradeRate + m.BookRate
		if m.Venue != exsim.Binance || m.BookRate > maxBookRate {
			t.Fatalf("market %+v", m)
		}
	}
	if math.Abs(total-5000) > 1 {
		t.Errorf("scale markets total %v, want 5000", total)
	}
}

func TestSymbolNames(t *testing.T) {
	names, err := symbolNames(3, 0)
	if err != nil || !reflect.DeepEqual(names, []string{"BTCUSDT", "ETHUSDT", "S2USDT"}) {
		t.Fatalf("names %v, %v", names, err)
	}
	ev := sampleTrade("S0USDT", firstRawID)
	natural := len(ev.AppendJSON(nil))
	names, err = symbolNames(2, natural+5)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		ev := sampleTrade(n, firstRawID)
		if l := len(n); l > MaxSymbolLen || !strings.HasSuffix(n, "USDT") {
			t.Errorf("name %q (%d chars)", n, l)
		}
		if len(ev.AppendJSON(nil)) != natural+5 {
			t.Errorf("%s: body %d bytes, want %d", n, len(ev.AppendJSON(nil)), natural+5)
		}
	}
	// With 20 symbols S10..S19 are a character longer than S0: the
	// smallest reachable size grows by one, and every name pads to it.
	if _, err := symbolNames(20, natural); !errors.Is(err, ErrConfig) {
		t.Errorf("20 symbols at %d bytes: err %v", natural, err)
	}
	names, err = symbolNames(20, natural+1)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if ev := sampleTrade(n, firstRawID); len(ev.AppendJSON(nil)) != natural+1 {
			t.Errorf("%s: body %d bytes, want %d", n, len(ev.AppendJSON(nil)), natural+1)
		}
	}
	if _, err := symbolNames(1, natural+100); !errors.Is(err, ErrConfig) {
		t.Errorf("unreachable size: err %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"zero", Config{}, ""},
		{"negative messages", Config{Messages: -1}, "Messages"},
		{"nan rate", Config{Rate: math.NaN()}, "Rate"},
		{"connections over symbols", Config{Symbols: 2, Connections: 3}, "Connections"},
		{"phases", Config{Phases: "all"}, "Phases"},
		{"phases list", Config{Phases: "raw,ceilng"}, "Phases"},
		{"phases empty item", Config{Phases: "raw,"}, "Phases"},
		{"storage", Config{Storage: 7}, "Storage"},
		{"size", Config{Size: 10}, "Size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("err %v, want ErrConfig naming %s", err, tt.field)
			}
		})
	}
	if err := (ScaleConfig{BookDepth: 6000}).Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("scale book depth: %v", err)
	}
}

func TestPaceFixedRateCountsAndLimit(t *testing.T) {
	// A limit-bound run offers exactly the limit, whatever emit's batching.
	calls := 0
	n := pace(context.Background(), 1e6, 5000, time.Time{}, 0, func(k int) int { calls++; return k })
	if n != 5000 || calls == 0 {
		t.Errorf("pace = %d after %d calls, want 5000", n, calls)
	}
	n = pace(context.Background(), 0, 1000, time.Time{}, 300, func(k int) int {
		if k > 300 {
			t.Errorf("chunk %d over 300", k)
		}
		return k
	})
	if n != 1000 {
		t.Errorf("saturation pace = %d, want 1000", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := pace(ctx, 1000, 0, time.Time{}, 0, func(k int) int { return k }); n != 0 {
		t.Errorf("cancelled pace = %d", n)
	}
}

func TestWriteChart(t *testing.T) {
	pt := func(rate, raw, br, p99 float64) *Report {
		return &Report{
			Settings: Settings{Rate: rate},
			Raw:      &Phase{MsgsPerSec: raw, Latency: Latency{P50: p99 / 3, P99: p99}},
			Bridge:   &Phase{MsgsPerSec: br, Latency: Latency{P50: p99 / 2, P99: 2 * p99}},
		}
	}
	var b strings.Builder
	err := WriteChart(&b, &SweepReport{Env: Env{GoVersion: "go1.26", NATS: "embedded & <x>"}, Points: []*Report{pt(10000, 10000, 10000, 800), pt(50000, 50000, 49000, 2500)}})
	if err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"<svg", "</svg>", "bridge p99", "raw JetStream", "embedded &amp; &lt;x&gt;", "50k"} {
		if !strings.Contains(s, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if err := WriteChart(&b, &SweepReport{}); !errors.Is(err, ErrConfig) {
		t.Errorf("empty sweep: %v", err)
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		max  float64
		want []float64
	}{
		{52500, []float64{0, 20000, 40000, 60000}},
		{100000, []float64{0, 20000, 40000, 60000, 80000, 100000}},
		{1, []float64{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}},
		{0, []float64{0, 1}},
	}
	for _, tt := range tests {
		if got := niceTicks(tt.max); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("niceTicks(%v) = %v, want %v", tt.max, got, tt.want)
		}
	}
}

func TestGoroutinesByComponent(t *testing.T) {
	stop := make(chan struct{})
	started := make(chan struct{}, 3)
	for range 3 {
		goComponent(context.Background(), compBridge, func(context.Context) { started <- struct{}{}; <-stop })
	}
	for range 3 {
		<-started
	}
	defer close(stop)
	got, err := goroutinesByComponent()
	if err != nil {
		t.Fatal(err)
	}
	if got[compBridge] < 3 || got[compRuntime] < 1 {
		t.Errorf("goroutines by component = %v, want >= 3 %s and the test's own", got, compBridge)
	}
}

func TestRecvTS(t *testing.T) {
	ev := sampleTrade("BTCUSDT", firstRawID)
	ev.RecvTS = 1767225600123456789
	if got, ok := recvTS(ev.AppendJSON(nil)); !ok || got != ev.RecvTS {
		t.Errorf("recvTS = %d, %v; want %d", got, ok, ev.RecvTS)
	}
	for _, bad := range []string{`{}`, `{"recv_ts":}`, `{"recv_ts":"1"}`} {
		if _, ok := recvTS([]byte(bad)); ok {
			t.Errorf("recvTS(%s) ok", bad)
		}
	}
}

// TestPhaseSelection: Config.Phases selects phases by name from a
// comma-separated list; empty selects all three.
func TestPhaseSelection(t *testing.T) {
	for _, tt := range []struct {
		phases string
		want   []string
	}{
		{"", []string{"raw", "ceiling", "bridge"}},
		{"raw", []string{"raw"}},
		{"ceiling", []string{"ceiling"}},
		{"bridge, raw", []string{"raw", "bridge"}},
		{"ceiling,bridge", []string{"ceiling", "bridge"}},
	} {
		c := Config{Phases: tt.phases}
		if err := c.Validate(); err != nil {
			t.Errorf("%q: %v", tt.phases, err)
		}
		var got []string
		for _, p := range phaseNames {
			if c.runs(p) {
				got = append(got, p)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q runs %v, want %v", tt.phases, got, tt.want)
		}
	}
}

// TestCeilingFeed: the ceiling's feed hands the publisher one event per
// call, each symbol's trade ids consecutive from firstRawID, across the
// blocks of preformatted ids.
func TestCeilingFeed(t *testing.T) {
	var got []bridge.Event
	pub := bridge.HandlerFunc(func(_ context.Context, evs []bridge.Event) error {
		if len(evs) != 1 {
			t.Fatalf("batch of %d events, want 1", len(evs))
		}
		got = append(got, evs[0])
		return nil
	})
	f := newCeilingFeed(pub, []string{"AAAUSDT", "BBBUSDT"})
	const n = idBlock + 10
	if d := f.gen(context.Background(), 1, n); d != n {
		t.Fatalf("gen returned %d, want %d", d, n)
	}
	if d := f.gen(context.Background(), 0, 3); d != 3 {
		t.Fatalf("gen returned %d, want 3", d)
	}
	for i, ev := range got {
		sym, seq := "BBBUSDT", int64(firstRawID+i)
		if i >= n {
			sym, seq = "AAAUSDT", int64(firstRawID+i-n)
		}
		if ev.Symbol != sym || ev.Seq != seq || ev.ID != strconv.FormatInt(seq, 10) || ev.Type != bridge.EventTrade || ev.TS == 0 {
			t.Fatalf("event %d: %+v, want %s #%d", i, ev, sym, seq)
		}
	}
	stop := errors.New("closed")
	f = newCeilingFeed(bridge.HandlerFunc(func(context.Context, []bridge.Event) error { return stop }), []string{"AAAUSDT"})
	if d := f.gen(context.Background(), 0, 5); d != 0 {
		t.Errorf("gen after a publisher error returned %d, want 0", d)
	}
}
