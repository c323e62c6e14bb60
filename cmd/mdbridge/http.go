package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// handler serves /healthz (the process is alive), /readyz (NATS reachable
// and every connection CONNECTED, or still within MDB_READY_GRACE of start)
// and /metrics (Prometheus).
func (a *app) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStreamsCollector(func() []*bridge.Stream { return a.node.Streams() }),
		newNATSCollector(a.node.Conn),
		a.metrics.ingest,
		publisher.NewCollector(a.node.Publisher(), a.node.States(), a.node.SnapshotService()),
	)
	if _, ok := a.node.SubscribeStatus(); ok {
		reg.MustRegister(newSubscribeCollector(a.node.SubscribeStatus))
	}
	if c := a.node.Cluster(); c != nil {
		reg.MustRegister(newClusterCollector(c))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, why := a.ready()
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": ready, "reason": why})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// ready reports readiness and, when not ready, why.
func (a *app) ready() (bool, string) {
	if nc := a.node.Conn(); nc == nil || !nc.IsConnected() {
		return false, "NATS not connected"
	}
	for _, s := range a.node.Streams() {
		for _, c := range s.Stats().Connections {
			if c.State != "CONNECTED" {
				why := notConnected(s.Exchange(), c)
				if time.Since(a.start) < a.cfg.ReadyGrace {
					return true, "within start grace (MDB_READY_GRACE): " + why
				}
				return false, why
			}
		}
	}
	return true, "all connections CONNECTED"
}

// notConnected says which connection is not CONNECTED and why. A slot
// without a current connection (FAILED, or before its first dial) is named
// by its exchange and plan index.
func notConnected(exchange string, c bridge.ConnStats) string {
	name := c.Connection
	if name == "" {
		name = exchange + "-" + strconv.Itoa(c.Shard)
	}
	why := exchange + " connection " + name + " is " + c.State
	if c.LastError != "" {
		why += " (last error: " + c.LastError + ")"
	}
	return why
}
