package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// Run with a fixed count, e.g.
//
//	go test -run '^$' -bench 'Publisher|Raw' -benchtime 200000x -benchmem ./publisher/
//
// Both benchmarks publish the same pre-built trades (10 subjects, unique msg
// IDs) to a fresh embedded server with the same file-storage stream, and stop
// the clock only when every message is acknowledged.

const benchSubjects = 10

func benchEvents(n int) []bridge.Event {
	evs := make([]bridge.Event, n)
	for i := range evs {
		evs[i] = trade("binance", "SYM"+strconv.Itoa(i%benchSubjects), i)
	}
	return evs
}

// benchConn starts a server with the MD stream and returns a connection.
func benchConn(b *testing.B) *nats.Conn {
	b.Helper()
	srv := startServer(b, nil)
	nc := connect(b, srv.ClientURL())
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := EnsureStream(ctx, js, Config{}); err != nil {
		b.Fatal(err)
	}
	return nc
}

// run timings: wall clock and process CPU (client, publisher and the
// in-process server together; the server's share is the same for both).
type timing struct{ wall, cpu time.Duration }

func runPublisher(b *testing.B, nc *nats.Conn, cfg Config, evs []bridge.Event, batch int) timing {
	b.Helper()
	ctx := context.Background()
	p, err := NewJetStream(ctx, nc, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	start, cpu := time.Now(), processCPU()
	for i := 0; i < len(evs); i += batch {
		if err := p.Publish(ctx, evs[i:min(i+batch, len(evs))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	d := timing{time.Since(start), processCPU() - cpu}
	if st := p.Stats(); st.Acked != uint64(len(evs)) || st.Duplicates != 0 {
		b.Fatalf("stats %+v", st)
	}
	return d
}

// rawMsgs pre-builds what a plain nats.go user would: payloads, subjects,
// msg IDs and header values.
type rawMsgs struct {
	subjects, ids, types, ts []string
	payloads                 [][]byte
}

func buildRaw(evs []bridge.Event) *rawMsgs {
	r := &rawMsgs{}
	for i := range evs {
		ev := &evs[i]
		r.subjects = append(r.subjects, string(ev.AppendSubject(nil, DefaultSubjectPrefix)))
		r.ids = append(r.ids, ev.MsgID())
		r.types = append(r.types, ev.Type.String())
		r.ts = append(r.ts, strconv.FormatInt(ev.TS, 10))
		r.payloads = append(r.payloads, ev.AppendJSON(nil))
	}
	return r
}

func runRaw(b *testing.B, nc *nats.Conn, r *rawMsgs) timing {
	b.Helper()
	js, err := jetstream.New(nc) // defaults: 4000 pending acks, no ack timeout
	if err != nil {
		b.Fatal(err)
	}
	var acked, dups int
	start, cpu := time.Now(), processCPU()
	futures := make([]jetstream.PubAckFuture, 0, len(r.payloads))
	for i := range r.payloads {
		m := &nats.Msg{Subject: r.subjects[i], Data: r.payloads[i], Header: nats.Header{
			HeaderMsgID: {r.ids[i]}, HeaderType: {r.types[i]}, HeaderExchangeTS: {r.ts[i]},
		}}
		for {
			f, err := js.PublishMsgAsync(m)
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			futures = append(futures, f)
			break
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("acks missing")
	}
	d := timing{time.Since(start), processCPU() - cpu}
	for _, f := range futures {
		select {
		case a := <-f.Ok():
			acked++
			if a.Duplicate {
				dups++
			}
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
	if acked != len(r.payloads) || dups != 0 {
		b.Fatalf("raw: %d acked, %d duplicates", acked, dups)
	}
	return d
}

// benchBuffers are the buffer sizes benchmarked: the default (the producer
// outruns NATS, so up to 200 000 messages sit in the heap) and 16 384 (the
// steady state of a live feed, where Publish is backpressured like the raw
// loop is by nats.go's 4000 pending acks).
var benchBuffers = []struct {
	name string
	cfg  Config
}{{"buffer=16384", Config{BufferMessages: 16384}}, {"buffer=default", Config{}}}

func BenchmarkPublisher(b *testing.B) {
	for _, buf := range benchBuffers {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", buf.name, batch), func(b *testing.B) {
				evs := benchEvents(b.N)
				nc := benchConn(b)
				b.ReportAllocs()
				b.ResetTimer()
				d := runPublisher(b, nc, buf.cfg, evs, batch)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/d.wall.Seconds(), "msgs/s")
				b.ReportMetric(float64(d.cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
			})
		}
	}
}

func BenchmarkRawPublishAsync(b *testing.B) {
	r := buildRaw(benchEvents(b.N))
	nc := benchConn(b)
	b.ReportAllocs()
	b.ResetTimer()
	d := runRaw(b, nc, r)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/d.wall.Seconds(), "msgs/s")
	b.ReportMetric(float64(d.cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
}

// BenchmarkPublisherVsRaw runs both on the same server in alternating
// rounds (the machine is shared, so throughput drifts) and reports the median
// per-round ratio publisher throughput / raw throughput as "ratio", and the
// ratio of CPU per message raw / publisher as "cpu-ratio" (less noisy; 1.0
// means the publisher costs no more CPU than the raw loop).
func BenchmarkPublisherVsRaw(b *testing.B) {
	for _, buf := range benchBuffers {
		b.Run(buf.name, func(b *testing.B) { publisherVsRaw(b, buf.cfg) })
	}
}

func publisherVsRaw(b *testing.B, cfg Config) {
	const rounds = 6
	per := max(b.N/rounds, 1)
	nc := benchConn(b)
	var ratios, cpuRatios []float64
	var raw, pub timing
	b.ResetTimer()
	for r := range rounds {
		// Distinct msg IDs per round and side, so nobody hits duplicates.
		evs := benchEvents(per)
		for i := range evs {
			evs[i].Symbol = fmt.Sprintf("R%dP%s", r, evs[i].Symbol)
		}
		rawEvs := benchEvents(per)
		for i := range rawEvs {
			rawEvs[i].Symbol = fmt.Sprintf("R%dW%s", r, rawEvs[i].Symbol)
		}
		rm := buildRaw(rawEvs)
		var dr, dp timing
		if r%2 == 0 {
			dr = runRaw(b, nc, rm)
			dp = runPublisher(b, nc, cfg, evs, 64)
		} else {
			dp = runPublisher(b, nc, cfg, evs, 64)
			dr = runRaw(b, nc, rm)
		}
		raw.wall += dr.wall
		raw.cpu += dr.cpu
		pub.wall += dp.wall
		pub.cpu += dp.cpu
		ratios = append(ratios, float64(dr.wall)/float64(dp.wall))
		cpuRatios = append(cpuRatios, float64(dr.cpu)/float64(dp.cpu))
	}
	b.StopTimer()
	median := func(v []float64) float64 {
		slices.Sort(v)
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	n := float64(per * rounds)
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(median(cpuRatios), "cpu-ratio")
	b.ReportMetric(n/raw.wall.Seconds(), "raw-msgs/s")
	b.ReportMetric(n/pub.wall.Seconds(), "pub-msgs/s")
	b.ReportMetric(float64(raw.cpu.Nanoseconds())/n, "raw-cpu-ns/msg")
	b.ReportMetric(float64(pub.cpu.Nanoseconds())/n, "pub-cpu-ns/msg")
}
