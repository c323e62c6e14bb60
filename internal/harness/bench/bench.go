package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// layout describes how the components share the machine.
const layout = "one process: simulator, bridge, raw publisher and NATS server share GOMAXPROCS threads, scheduled by the Go runtime"

// Run measures the raw baseline and then the bridge with cfg (see the
// package documentation). It returns the report so far with the first
// error: ErrConfig for a bad cfg, ErrSetup when something could not start,
// ErrIncomplete when a phase did not get every message acknowledged, or
// ctx's error.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	withComponent(ctx, compHarness, func(ctx context.Context) { rep, err = run(ctx, cfg) })
	return rep, err
}

func run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	env, err := startNATS(ctx, cfg.NATSURL, cfg.StoreDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer env.close()
	return runPoint(ctx, env, cfg, "")
}

// runPoint runs the selected phases at one offered load; suffix is added
// to the phase names ("@50000" in a sweep).
func runPoint(ctx context.Context, env *natsEnv, cfg Config, suffix string) (*Report, error) {
	rep := &Report{Env: newEnv(env, cfg.NATSDesc), Settings: settingsOf(cfg)}
	rep.Env.Layout = layout
	if env.embedded == nil {
		rep.Env.Layout = "one process: simulator, bridge and raw publisher share GOMAXPROCS threads; NATS runs outside it"
	}
	for _, p := range []struct {
		name string
		run  func(context.Context, *natsEnv, Config, string) (*Phase, error)
		dst  **Phase
	}{
		{PhaseRaw, runRaw, &rep.Raw},
		{PhaseCeiling, runCeiling, &rep.Ceiling},
		{PhaseBridge, runBridge, &rep.Bridge},
	} {
		if !cfg.runs(p.name) {
			continue
		}
		ph, err := p.run(ctx, env, cfg, p.name+suffix)
		if ph != nil {
			ph.BodyMBPerSec = ph.MsgsPerSec * float64(ph.BodyBytes) / 1e6
		}
		*p.dst = ph
		if err != nil {
			return rep, err
		}
	}
	if rep.Ceiling != nil && rep.Bridge != nil && rep.Ceiling.MsgsPerSec > 0 {
		rep.CeilingRatio = rep.Bridge.MsgsPerSec / rep.Ceiling.MsgsPerSec
	}
	if rep.Raw != nil && rep.Bridge != nil {
		if rep.Raw.MsgsPerSec > 0 {
			rep.Ratio = rep.Bridge.MsgsPerSec / rep.Raw.MsgsPerSec
		}
		rep.AddedP99 = rep.Bridge.Latency.P99 - rep.Raw.Latency.P99
		if rep.Bridge.ToWire != nil && rep.Raw.ToWire != nil {
			rep.AddedP99ToWire = rep.Bridge.ToWire.P99 - rep.Raw.ToWire.P99
		}
	}
	var errs []error
	for _, ph := range []*Phase{rep.Raw, rep.Ceiling, rep.Bridge} {
		if ph != nil && !ph.Complete {
			errs = append(errs, fmt.Errorf("%w: %s: %d of %d messages acknowledged, %d duplicates, %d errors",
				ErrIncomplete, ph.Name, ph.Acked, ph.Messages, ph.Duplicates, ph.Errors))
		}
	}
	return rep, errors.Join(errs...)
}

func settingsOf(cfg Config) Settings {
	st := "file"
	if cfg.Storage != 0 {
		st = "memory"
	}
	return Settings{
		Messages: cfg.Messages, DurationSec: cfg.Duration.Seconds(), Rate: cfg.Rate,
		Symbols: cfg.Symbols, Connections: cfg.Connections, Size: cfg.Size,
		Storage: st, MaxInFlight: cfg.MaxInFlight, Stream: StreamName,
	}
}

// SweepReport is the result of Sweep: one Report per offered load, in the
// order given.
type SweepReport struct {
	Env    Env       `json:"env"`
	Points []*Report `json:"points"`
}

// Sweep runs Run's phases once per offered load in rates (messages per
// second, each > 0) against one NATS server. cfg.Rate is ignored; each
// point runs cfg.Messages or cfg.Duration (default DefaultRateDuration).
// It returns the points measured so far with the first error.
func Sweep(ctx context.Context, cfg Config, rates []float64) (sr *SweepReport, err error) {
	withComponent(ctx, compHarness, func(ctx context.Context) { sr, err = sweep(ctx, cfg, rates) })
	return sr, err
}

func sweep(ctx context.Context, cfg Config, rates []float64) (*SweepReport, error) {
	if len(rates) == 0 {
		return nil, fmt.Errorf("%w: Sweep: no rates", ErrConfig)
	}
	for _, r := range rates {
		if !(r > 0) {
			return nil, fmt.Errorf("%w: Sweep: rate %v: want > 0", ErrConfig, r)
		}
	}
	cfg.Rate = rates[0]
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	env, err := startNATS(ctx, cfg.NATSURL, cfg.StoreDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer env.close()
	sr := &SweepReport{Env: newEnv(env, cfg.NATSDesc)}
	for _, r := range rates {
		c := cfg
		c.Rate = r
		rep, err := runPoint(ctx, env, c, "@"+strconv.FormatFloat(r, 'f', -1, 64))
		if rep != nil {
			sr.Points = append(sr.Points, rep)
			sr.Env = rep.Env
		}
		if err != nil {
			return sr, err
		}
	}
	return sr, nil
}
