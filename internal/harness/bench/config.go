package bench

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// Defaults of Config.
const (
	DefaultMessages     = 1_000_000
	DefaultRateDuration = 10 * time.Second // run length at a fixed Rate when neither Messages nor Duration is set
	DefaultStallTimeout = 30 * time.Second
	// MaxSymbolLen is the longest symbol the simulator accepts in a Binance
	// stream name; it bounds what Size can add to a message.
	MaxSymbolLen = 20
)

// Names of the benchmark's own stream, subjects, KV bucket and control
// subjects: distinct from mdbridge's defaults, so a bench against an
// external NATS server never touches a production MD stream. Only the
// names differ; the stream configuration is the bridge's.
const (
	StreamName    = "MDBENCH"
	SubjectPrefix = "mdbench"
	KVBucket      = "mdbench_state"
	ControlPrefix = "mdbenchctl"
)

// Config configures Run and Sweep. The zero value is a saturation run of
// DefaultMessages messages of one symbol over one connection against an
// embedded NATS server with file storage.
type Config struct {
	// Messages is the number of messages of each phase. Default
	// DefaultMessages, or unlimited when Duration is set.
	Messages int
	// Duration, when set, ends each phase's offered load after this long
	// (and after Messages, if both are set).
	Duration time.Duration
	// Rate is the offered load in messages per second, paced in 1 ms steps.
	// 0 offers as fast as the pipeline accepts (saturation). With a Rate and
	// neither Messages nor Duration, a phase lasts DefaultRateDuration.
	Rate float64
	// Symbols is the number of Binance symbols the load is spread over
	// (default 1: BTCUSDT).
	Symbols int
	// Connections is the number of WebSocket connections the bridge
	// spreads the symbols over (default 1; at most Symbols).
	Connections int
	// Size is the target size in bytes of a message body. The simulator
	// formats trades itself, so the only knob is the symbol name (padded up
	// to MaxSymbolLen characters); a Size the names cannot reach is an
	// error. 0 keeps the natural size (about 190 bytes).
	Size int
	// Storage of the stream (zero: file).
	Storage jetstream.StorageType
	// NATSURL is an external NATS server (nats:// only: the harness reads
	// acknowledgements off the socket). Empty starts an embedded server on
	// 127.0.0.1 with a random port.
	NATSURL string
	// StoreDir is the embedded server's JetStream directory. Empty: a
	// temporary directory removed afterwards.
	StoreDir string
	// MaxInFlight is the window of unacknowledged publishes, for the raw
	// phase and the bridge's publisher alike. Default
	// publisher.DefaultMaxInFlight.
	MaxInFlight int
	// Phases selects the phases: a comma-separated subset of "raw",
	// "ceiling" and "bridge" (run in that order), or "" for all three.
	Phases string
	// NoCPUSplit disables the CPU profile that splits CPU time by
	// component (it costs about 1% and needs the process's CPU profiler).
	NoCPUSplit bool
	// CPUProfile, if set, receives the bridge phase's CPU profile (pprof
	// format), for `go tool pprof`. Ignored with NoCPUSplit.
	CPUProfile io.Writer
	// MemProfile, if set, receives an allocation profile (pprof "allocs")
	// taken at the end of the bridge phase.
	MemProfile io.Writer
	// ExternalCPU, if set, returns the CPU time used so far by processes
	// outside this one that take part in the measurement (a NATS server
	// in a child process). Its increase over a phase is added to
	// CPUSeconds and to CPUSplit as "nats".
	ExternalCPU func() time.Duration
	// NATSDesc, if set, describes the NATS server in the report instead
	// of NATSURL (e.g. "separate process").
	NATSDesc string
	// StallTimeout ends a phase with ErrIncomplete when no acknowledgement
	// arrives for this long. Default DefaultStallTimeout.
	StallTimeout time.Duration
	// Progress, if set, is called about every 200 ms while a phase runs.
	Progress func(Progress)
	// Logger receives the components' logs (nil: discard).
	Logger *slog.Logger
}

// Progress describes a running phase.
type Progress struct {
	Phase   string        // "raw", "bridge" (with "@<rate>" in a sweep), "scale"
	Step    string        // "setup", "run", "drain", "readback"
	Done    uint64        // messages acknowledged so far
	Total   uint64        // messages expected; 0 when unknown (Duration)
	Elapsed time.Duration // since the load started
	Left    time.Duration // time left of a Duration-bound phase
	Rate    float64       // acknowledgements per second over the last interval
}

func (c Config) withDefaults() Config {
	if c.Messages == 0 && c.Duration == 0 {
		if c.Rate > 0 {
			c.Duration = DefaultRateDuration
		} else {
			c.Messages = DefaultMessages
		}
	}
	if c.Symbols == 0 {
		c.Symbols = 1
	}
	if c.Connections == 0 {
		c.Connections = 1
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = publisher.DefaultMaxInFlight
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Messages < 0:
		return bad("Messages", "%d is negative", c.Messages)
	case c.Duration < 0:
		return bad("Duration", "%s is negative", c.Duration)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return bad("Rate", "%v: want 0 (saturation) or a positive rate", c.Rate)
	case c.Symbols < 0 || c.Symbols > 10_000:
		return bad("Symbols", "%d outside 1..10000", c.Symbols)
	case c.Connections < 0:
		return bad("Connections", "%d is negative", c.Connections)
	case c.Connections > max(c.Symbols, 1):
		return bad("Connections", "%d connections for %d symbols: each connection needs a symbol", c.Connections, max(c.Symbols, 1))
	case c.Size < 0:
		return bad("Size", "%d is negative", c.Size)
	case c.MaxInFlight < 0:
		return bad("MaxInFlight", "%d is negative", c.MaxInFlight)
	case phaseErr(c.Phases) != nil:
		return bad("Phases", "%v", phaseErr(c.Phases))
	case c.StallTimeout < 0:
		return bad("StallTimeout", "%s is negative", c.StallTimeout)
	}
	if c.Storage != jetstream.FileStorage && c.Storage != jetstream.MemoryStorage {
		return bad("Storage", "%v: want file or memory", c.Storage)
	}
	if _, err := symbolNames(max(c.Symbols, 1), c.Size); err != nil {
		return err
	}
	return nil
}

// symbolNames returns n distinct Binance symbols; with size > 0 they are
// padded so that a trade body is about size bytes.
func symbolNames(n, size int) ([]string, error) {
	names := make([]string, n)
	for i := range names {
		switch i {
		case 0:
			names[i] = "BTCUSDT"
		case 1:
			names[i] = "ETHUSDT"
		default:
			names[i] = "S" + strconv.Itoa(i) + "USDT"
		}
	}
	if size == 0 {
		return names, nil
	}
	// Padded names are S<i>XXX..USDT for every symbol: the simulator
	// prices unknown bases alike (1 to 3 integer digits).
	for i := range names {
		names[i] = "S" + strconv.Itoa(i)
	}
	// The smallest body has the longest unpadded name, S<n-1>USDT.
	ev := sampleTrade(names[n-1]+"USDT", firstRawID)
	smallest := len(ev.AppendJSON(nil))
	want := len(names[n-1]) + size - smallest // characters before "USDT"
	if size < smallest || want+len("USDT") > MaxSymbolLen {
		return nil, fmt.Errorf("%w: Size: %d bytes cannot be reached: trade bodies are %d..%d bytes with %d symbols (the simulator formats the trade fields; only symbol names, at most %d characters, can grow)",
			ErrConfig, size, smallest, smallest+MaxSymbolLen-len(names[n-1])-len("USDT"), n, MaxSymbolLen)
	}
	for i, s := range names {
		names[i] = s + strings.Repeat("X", want-len(s)) + "USDT"
	}
	return names, nil
}

// firstRawID is the first trade id of the raw phase: ten digits, like the
// simulator's Binance trade ids.
const firstRawID = 1_000_000_000

// sampleTrade is a trade as the bridge emits it for one of the simulator's
// Binance markets: the raw phase publishes exactly this shape.
func sampleTrade(symbol string, id int64) bridge.Event {
	price := "123.45600000"
	if symbol == "BTCUSDT" {
		price = "65000.12000000"
	}
	return bridge.Event{
		Type: bridge.EventTrade, Exchange: "binance", Symbol: symbol,
		TS: 1_767_225_600_000_000_000, RecvTS: 1_767_225_600_000_100_000,
		ID: strconv.FormatInt(id, 10), Seq: id,
		Price: price, Qty: "0.01234000", Side: bridge.SideBuy,
	}
}

// publisherConfig is the stream and publisher configuration both phases
// use: the bridge's defaults with the benchmark's names.
func (c Config) publisherConfig() publisher.Config {
	return publisher.Config{
		Stream: StreamName, SubjectPrefix: SubjectPrefix, Storage: c.Storage,
		KVBucket: KVBucket, ControlPrefix: ControlPrefix, MaxInFlight: c.MaxInFlight,
	}
}

// Phase names, in the order Run runs them.
const (
	PhaseRaw     = "raw"
	PhaseCeiling = "ceiling"
	PhaseBridge  = "bridge"
)

// phaseNames are the phases Run knows, in the order it runs them.
var phaseNames = []string{PhaseRaw, PhaseCeiling, PhaseBridge}

// phaseErr checks a Config.Phases value.
func phaseErr(phases string) error {
	if phases == "" {
		return nil
	}
	for p := range strings.SplitSeq(phases, ",") {
		if !slices.Contains(phaseNames, strings.TrimSpace(p)) {
			return fmt.Errorf("%q: want a comma-separated subset of raw, ceiling and bridge, or empty (all three)", phases)
		}
	}
	return nil
}

// runs reports whether c.Phases selects phase.
func (c Config) runs(phase string) bool {
	if c.Phases == "" {
		return true
	}
	for p := range strings.SplitSeq(c.Phases, ",") {
		if strings.TrimSpace(p) == phase {
			return true
		}
	}
	return false
}
