// Package bench measures mdbridge end to end against a raw JetStream
// baseline, on one machine: the harness behind `mdbridge bench` and the Go
// benchmarks of this package. The simulator, the bridge and the raw
// publisher run in the calling process; the NATS server is embedded in it
// too (default), or runs elsewhere (Config.NATSURL, e.g. the embedded server
// in a child process started by `mdbridge bench -nats-process`).
//
// # What is measured
//
// Run executes three phases (Config.Phases selects a subset) against the
// same NATS server and the same stream configuration
// (publisher.EnsureStream: file or memory storage, duplicate window on),
// each on a freshly created stream:
//
//   - raw: the harness encodes the bridge's own wire messages (subject,
//     Nats-Msg-Id, Md-Type and Md-Exchange-Ts headers, bridge.Event.AppendJSON
//     body) and publishes them with nats.go jetstream PublishMsgAsync under a
//     bounded in-flight window, counting acknowledged messages only;
//   - ceiling: the bridge's own publisher (publisher.JetStream, the bridge
//     phase's configuration) fed pre-built trades of the raw phase's shape,
//     one per Publish call as the bridge hands over one trade frame: no
//     simulator, WebSocket or decode. bridge/ceiling (Report.CeilingRatio)
//     is the share of its own publishing capacity the bridge keeps;
//   - bridge: exsim emits Binance trade frames over a loopback
//     WebSocket, the bridge (bridge.Stream with the binance adapter) decodes,
//     deduplicates and sequence-checks them, and publisher.JetStream publishes
//     them; again only acknowledged messages count.
//
// The phases offer the same load: as fast as possible (saturation) or a
// fixed rate paced in 1 ms steps (Config.Rate). Sweep repeats Run over
// several rates; Scale measures one replica carrying many symbols.
// Replicas (`bench -scale -replicas N`) runs N processes of the real
// `mdbridge run` in cluster mode (the executable re-run with "run" and
// MDB_CLUSTER, MDB_REDUNDANCY, MDB_INSTANCE, MDB_SUBSCRIBE...), with NATS
// and the simulator in child processes: it follows md_state (every unit
// on min(R, N) live CONNECTED owners, their books' snapshots), reads each
// replica's CPU (utime + stime of /proc/<pid>/stat) and peak RSS (VmHWM)
// over the steady window, SIGKILLs one replica and times the handover
// (until every unit is back on min(R, N-1) survivors; the survivors'
// mdbridge_cluster_members shows when they dropped it), and counts
// rate-limit answers at a REST proxy per replica, which reaches the
// simulator from the replica's own loopback IP (replicas.go).
//
// # Latency method
//
// Every message carries its creation time in the Md-Exchange-Ts header: in
// the raw phase the harness's clock when it built the message; in the bridge
// phase the simulator's trade time (timeUnit=MICROSECOND, so µs resolution),
// stamped when the simulator generates the trade, just before it queues the
// frame to the WebSocket writer. The simulator, the bridge and NATS share one
// process and one clock. The acknowledgement time is observed on the
// publishing NATS connection itself: the harness dials it through a net.Conn
// wrapper that scans the bytes the client reads for JetStream PubAck bodies
// ({"stream":..,"seq":N}) and timestamps them as they arrive, i.e. when the
// client's read loop receives them, before nats.go dispatches the ack. After
// a phase, the stream is read back (headers only) to pair each stream
// sequence with its creation time. Latency is ack time minus creation time,
// for every stored message.
//
// # Resources
//
// CPU time is the process's getrusage (user + system) over a phase, plus
// Config.ExternalCPU (a NATS child process), so it includes everything that
// takes part (simulator, bridge, NATS server, harness). A CPU profile taken
// during the phase splits it by component: the harness starts each
// component's goroutines under a pprof label ("component": sim, bridge,
// raw, nats) that the goroutines they start inherit; nats-server replaces
// its goroutines' labels with its own, and those samples count as nats;
// unlabelled samples (GC workers, the scheduler) as runtime. Disable it
// with Config.NoCPUSplit. Peak RSS is VmHWM from /proc/self/status, reset at
// the start of each phase where the kernel allows it.
//
// # Command
//
// Main is the command `mdbridge bench` (cmd/mdbridge only wires it): flags
// (cli.go), the modes built on Run, Sweep and Scale (cli_run.go), the
// NATS and simulator child processes of -nats-process and -sim-process,
// which re-run the executable as `bench -serve-nats` or `bench -serve-sim`
// (child.go, pinned with -pin on Linux: pin_linux.go), and the table
// output (table.go, progressbar.go).
//
// # Concurrency
//
// Run, Sweep, Scale and Main may be called from any goroutine but use
// process-wide resources (the CPU profiler, the peak-RSS counter; Main with
// -pin also the process's CPU affinity), so run one at a time.
// Config.Progress is called from a harness goroutine.
package bench
