package bench

import (
	"runtime"
	"slices"
	"time"
)

// Report is the result of Run: the phases measured on the same machine
// and NATS server, with the same stream configuration and offered load.
type Report struct {
	Env      Env      `json:"env"`
	Settings Settings `json:"settings"`
	Raw      *Phase   `json:"raw,omitempty"`
	// Ceiling is the bridge's own publisher fed pre-built events: what the
	// bridge could reach if receiving and decoding cost nothing.
	Ceiling *Phase `json:"ceiling,omitempty"`
	Bridge  *Phase `json:"bridge,omitempty"`
	// Ratio is the bridge's throughput over the raw baseline's (both
	// phases present).
	Ratio float64 `json:"ratio,omitempty"`
	// CeilingRatio is the bridge's throughput over the ceiling's (both
	// phases present): the share of its own publishing capacity the bridge
	// keeps once it also receives and decodes.
	CeilingRatio float64 `json:"ceiling_ratio,omitempty"`
	// AddedP99 is the bridge's p99 latency minus the raw baseline's, in µs.
	AddedP99 float64 `json:"added_p99_us,omitempty"`
	// AddedP99ToWire is the same for the latency to the NATS socket
	// (Phase.ToWire): what the bridge adds before the server, free of the
	// server's own tail, which dominates AddedP99 near saturation.
	AddedP99ToWire float64 `json:"added_p99_to_wire_us,omitempty"`
}

// Env describes where the benchmark ran.
type Env struct {
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// NATS is "embedded" or the external server's URL (credentials
	// removed).
	NATS string `json:"nats"`
	// Layout says what shares the process: the simulator, the bridge, the
	// raw publisher and (when embedded) the NATS server run in this one
	// process, scheduled by Go over GOMAXPROCS threads.
	Layout string `json:"layout"`
}

// Settings echo the effective configuration.
type Settings struct {
	Messages    int     `json:"messages,omitempty"`
	DurationSec float64 `json:"duration_s,omitempty"`
	Rate        float64 `json:"rate,omitempty"` // 0: saturation
	Symbols     int     `json:"symbols"`
	Connections int     `json:"connections"`
	Size        int     `json:"size,omitempty"`
	Storage     string  `json:"storage"`
	MaxInFlight int     `json:"max_in_flight"`
	Stream      string  `json:"stream"`
}

// Phase is the measurement of one phase.
type Phase struct {
	Name string `json:"name"` // "raw", "ceiling" or "bridge" (a sweep adds "@rate")
	// Offered is the load actually offered, in messages per second: the
	// messages generated (bridge) or published (raw) over the time it took.
	Offered float64 `json:"offered_msgs_per_sec"`
	// Messages generated (bridge) or published (raw).
	Messages uint64 `json:"messages"`
	// Acked messages: JetStream acknowledged them (stored or duplicate).
	Acked uint64 `json:"acked"`
	// Duplicates among the acks (JetStream already had the msg ID).
	Duplicates uint64 `json:"duplicates"`
	// Errors: failed publish attempts (raw) or the publisher's failures,
	// drops and rejections (bridge).
	Errors uint64 `json:"errors"`
	// Complete is true when every message was acknowledged exactly once.
	Complete bool `json:"complete"`
	// Seconds from the first message offered to the last acknowledgement.
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	// BodyBytes is the size of a stored message body (the first one).
	BodyBytes int `json:"body_bytes"`
	// BodyMBPerSec is MsgsPerSec × BodyBytes in 10^6 bytes per second:
	// message bodies only, as nats bench reports payload throughput.
	BodyMBPerSec float64 `json:"body_mb_per_sec"`
	Latency      Latency `json:"latency"`
	// Stages splits the bridge's latency at the bridge's receive time
	// (bridge phase only).
	Stages *Stages `json:"stages,omitempty"`
	// ToWire is creation -> the message written to the NATS socket (the
	// publishing side's share of the latency, without the server's): for
	// raw the harness's publish call and nats.go, for the bridge the
	// simulator's send, the WebSocket, the bridge, the publisher and
	// nats.go. Absent when messages cannot be paired with their writes
	// (retransmissions).
	ToWire *Latency `json:"create_to_wire,omitempty"`
	// CPUSeconds is the process's CPU time (user + system) over the phase;
	// CPUPerMillion the same per million acknowledged messages.
	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUPerMillion float64 `json:"cpu_s_per_million"`
	// CPUSplit is CPUSeconds split by component (sim, bridge, raw, nats,
	// harness, and "runtime" for unlabeled work such as GC), from a CPU
	// profile; empty when disabled or unavailable.
	CPUSplit map[string]float64 `json:"cpu_split_s,omitempty"`
	// PeakRSS is the process's peak resident set during the phase (bytes);
	// PeakRSSReset says whether the peak was reset at the phase start (if
	// not, it is the peak since the process started).
	PeakRSS      uint64 `json:"peak_rss_bytes"`
	PeakRSSReset bool   `json:"peak_rss_reset"`
	Goroutines   int    `json:"goroutines"`
	// Bridge holds the bridge's and publisher's counters (bridge phase).
	Bridge *BridgeCounters `json:"bridge_stats,omitempty"`
}

// BridgeCounters are the bridge's and its publisher's counters after a
// bridge phase.
type BridgeCounters struct {
	Frames     uint64 `json:"frames"`
	Received   uint64 `json:"received"`
	Emitted    uint64 `json:"emitted"`
	Duplicates uint64 `json:"duplicates"`
	Gaps       uint64 `json:"gaps"`
	Malformed  uint64 `json:"malformed"`
	Reconnects uint64 `json:"reconnects"`
	Published  uint64 `json:"published"`
	Retries    uint64 `json:"publish_retries"`
	Failures   uint64 `json:"publish_failures"`
	Dropped    uint64 `json:"publish_dropped"`
	Rejected   uint64 `json:"publish_rejected"`
	// SimSlowDisconnects counts clients the simulator cut for reading too
	// slowly (must be 0: Backpressure is on).
	SimSlowDisconnects uint64 `json:"sim_slow_disconnects"`
}

// Latency is the distribution of creation-to-acknowledgement times, in µs.
type Latency struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50_us"`
	P90     float64 `json:"p90_us"`
	P99     float64 `json:"p99_us"`
	P999    float64 `json:"p999_us"`
	Max     float64 `json:"max_us"`
	// Unmatched counts stored messages whose acknowledgement the harness
	// did not see (0 unless a connection was lost).
	Unmatched int `json:"unmatched,omitempty"`
}

// Stages are the two parts of the bridge phase's latency, split at the
// bridge's receive timestamp (the body's recv_ts, taken right after the
// WebSocket read).
type Stages struct {
	// ToReceive: simulator trade time -> bridge receive: the simulator's
	// send queue, the loopback WebSocket and the bridge's read.
	ToReceive Latency `json:"to_receive"`
	// ReceiveToAck: bridge receive -> JetStream ack: decode, dedup,
	// sequence check, the publisher and NATS. Compare with the raw
	// baseline's latency (creation -> ack).
	ReceiveToAck Latency `json:"receive_to_ack"`
	// ReceiveToWire: bridge receive -> written to the NATS socket: the
	// bridge's own processing, its publisher's queue and nats.go, without
	// the simulator's hop or the server (absent when writes cannot be
	// paired, see Phase.ToWire).
	ReceiveToWire *Latency `json:"receive_to_wire,omitempty"`
}

// latencyOf summarizes samples (ns); it sorts them in place.
func latencyOf(ns []int64, unmatched int) Latency {
	l := Latency{Samples: len(ns), Unmatched: unmatched}
	if len(ns) == 0 {
		return l
	}
	slices.Sort(ns)
	us := func(v int64) float64 { return float64(v) / 1e3 }
	l.P50 = us(quantile(ns, 0.50))
	l.P90 = us(quantile(ns, 0.90))
	l.P99 = us(quantile(ns, 0.99))
	l.P999 = us(quantile(ns, 0.999))
	l.Max = us(ns[len(ns)-1])
	return l
}

// quantile returns the q-quantile of sorted values (nearest rank).
func quantile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// newEnv describes this machine and the NATS server: natsDesc (Config's
// NATSDesc) if set, else env's own description.
func newEnv(env *natsEnv, natsDesc string) Env {
	if natsDesc == "" {
		natsDesc = env.desc
	}
	return Env{
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), NATS: natsDesc,
	}
}

// finish computes the derived fields of a phase.
func (p *Phase) finish(start time.Time, lastAck int64, offerEnd time.Time, cpu time.Duration) {
	if lastAck > 0 {
		p.Seconds = time.Duration(lastAck - start.UnixNano()).Seconds()
	}
	if p.Seconds > 0 {
		p.MsgsPerSec = float64(p.Acked) / p.Seconds
	}
	if d := offerEnd.Sub(start).Seconds(); d > 0 {
		p.Offered = float64(p.Messages) / d
	}
	p.CPUSeconds = cpu.Seconds()
	if p.Acked > 0 {
		p.CPUPerMillion = p.CPUSeconds / float64(p.Acked) * 1e6
	}
	p.Complete = p.Acked == p.Messages && p.Duplicates == 0 && p.Errors == 0
}
