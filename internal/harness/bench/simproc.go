package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/qldata/mdbridge/exsim"
)

// simulator is what the rig needs of the exchange simulator: the in-process
// *exsim.Server, or a remoteSim in another process.
type simulator interface {
	BinanceWSURL() string
	BinanceRESTURL() string
	Conns() []exsim.ConnInfo
	Stats() exsim.Stats
	Close() error
}

// remoteSim is a simulator in another process (`mdbridge bench
// -serve-sim`), reached over its HTTP admin API.
type remoteSim struct {
	base   string // http://host:port
	client *http.Client
	log    *slog.Logger
}

func newRemoteSim(base string, log *slog.Logger) (*remoteSim, error) {
	base = strings.TrimRight(base, "/")
	if !strings.HasPrefix(base, "http://") {
		return nil, fmt.Errorf("%w: simulator URL %q: want http://host:port", ErrConfig, base)
	}
	r := &remoteSim{base: base, client: &http.Client{Timeout: 10 * time.Second}, log: log}
	var st exsim.Stats
	if err := r.get("/admin/stats", &st); err != nil {
		return nil, fmt.Errorf("%w: simulator at %s: %w (is `mdbridge bench -serve-sim` or `mdbridge sim` running there?)", ErrSetup, base, err)
	}
	return r, nil
}

func (r *remoteSim) BinanceWSURL() string   { return "ws" + strings.TrimPrefix(r.base, "http") }
func (r *remoteSim) BinanceRESTURL() string { return r.base }
func (r *remoteSim) Close() error           { return nil }

func (r *remoteSim) Conns() []exsim.ConnInfo {
	var cs []exsim.ConnInfo
	if err := r.get("/admin/conns", &cs); err != nil {
		r.log.Warn("simulator connections", "err", err)
	}
	return cs
}

func (r *remoteSim) Stats() exsim.Stats {
	var st exsim.Stats
	if err := r.get("/admin/stats", &st); err != nil {
		r.log.Warn("simulator counters", "err", err)
	}
	return st
}

func (r *remoteSim) get(path string, v any) error {
	resp, err := r.client.Get(r.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// ScaleMarkets returns the simulator markets of a Scale run with these
// symbols and rate (defaults applied as in ScaleConfig), for a simulator
// started in another process (ScaleConfig.SimURL).
func ScaleMarkets(symbols int, rate float64) []exsim.MarketConfig {
	c := ScaleConfig{Symbols: symbols, Rate: rate}.withDefaults()
	return scaleMarkets(c.Symbols, c.Rate)
}

// ServeSim runs the simulator of a Scale run (ScaleMarkets) until ctx
// ends, calling ready with its base URL once it listens.
func ServeSim(ctx context.Context, symbols int, rate float64, log *slog.Logger, ready func(url string)) error {
	return ServeSimLimit(ctx, symbols, rate, 0, log, ready)
}

// ServeSimLimit is ServeSim with the simulator's Binance REST weight limit
// per minute per IP (0: the simulator's default, 6000). Replicas raises it
// to the replicas' number times their budget: each replica models a pod
// with its own egress IP, while here they all reach the simulator from
// 127.0.0.1.
func ServeSimLimit(ctx context.Context, symbols int, rate float64, weightLimit int, log *slog.Logger, ready func(url string)) error {
	sim, err := exsim.New(exsim.Config{Markets: ScaleMarkets(symbols, rate), Seed: 1, BinanceWeightLimit: weightLimit}, log)
	if err != nil {
		return err
	}
	if err := sim.Start(ctx); err != nil {
		return err
	}
	defer sim.Close()
	ready(sim.AdminURL())
	<-ctx.Done()
	return nil
}
