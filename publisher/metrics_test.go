package publisher

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

func TestCollector(t *testing.T) {
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	p := newPublisher(t, nc, Config{})
	if err := p.Publish(context.Background(), trades("binance", "BTCUSDT", 0, 5)); err != nil {
		t.Fatal(err)
	}
	shutdown(t, p)

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(p, nil, nil)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	out := b.String()
	for _, want := range []string{
		"mdbridge_events_acked_total 5",
		"mdbridge_events_published_total 5",
		"mdbridge_publish_dropped_total 0",
		"mdbridge_publish_buffer_messages 0",
		"mdbridge_publish_latency_seconds_count 5",
		`mdbridge_publish_latency_seconds_bucket{le="+Inf"} 5`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}
