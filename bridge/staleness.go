package bridge

// Data age: how old the newest message of each symbol and channel is, and
// whether it is stale. Each (symbol, channel) pair has a
// resilience.DataQualityMonitor (fed with the local receive time of every
// live event of the channel) and a resilience.AlertManager (edge-triggered:
// one warning when the channel goes stale, one info when it recovers). The
// stream checks them every second; md_state (SymbolState.Channels), Stats
// and the metrics show the result.
//
// Staleness only reports: repairing a connection that delivers nothing is
// the silent-feed check's job (SilenceCheck), which asks the venue before
// replacing anything, so a legitimately quiet symbol is stale (after its
// channel's threshold) but never reconnected.

import (
	"context"
	"fmt"
	"math/bits"
	"sort"
	"sync/atomic"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// DefaultStaleAfter is the default StaleConfig.After.
const DefaultStaleAfter = time.Minute

// maxStaleTick bounds the period of the staleness check.
const maxStaleTick = time.Second

// StaleConfig sets when a symbol's channel counts as stale: no live message
// of that channel received for the threshold (from the stream's start, if
// none was received yet).
type StaleConfig struct {
	// After is the threshold of every channel without an override.
	// Default 1m; negative is rejected.
	After time.Duration
	// Channels overrides the threshold per channel (one channel bit per
	// key: ChannelTrade, KlineChannel(Interval1h), ...), e.g. a longer one
	// for trades of quiet symbols and a shorter one for the order book.
	// Each value must be positive.
	Channels map[Channel]time.Duration
}

// threshold returns the threshold of ch.
func (c StaleConfig) threshold(ch Channel) time.Duration {
	if d, ok := c.Channels[ch]; ok {
		return d
	}
	return c.After
}

// validate checks c and fills the default.
func (c StaleConfig) validate() (StaleConfig, error) {
	if c.After < 0 {
		return c, fmt.Errorf("%w: Stale.After must not be negative (got %s)", ErrConfig, c.After)
	}
	if c.After == 0 {
		c.After = DefaultStaleAfter
	}
	for ch, d := range c.Channels {
		if bits.OnesCount64(uint64(ch)) != 1 {
			return c, fmt.Errorf("%w: Stale.Channels: %#x is not one channel", ErrConfig, uint8(ch))
		}
		if d <= 0 {
			return c, fmt.Errorf("%w: Stale.Channels[%s] must be positive (got %s)", ErrConfig, ch, d)
		}
	}
	return c, nil
}

// ChannelState is the data age of one channel of a symbol, in md_state
// (SymbolState.Channels, keyed by the channel's name: "trade", "book",
// "kline.1m", ...).
type ChannelState struct {
	LastMessageTS int64  `json:"last_message_ts"` // Unix ns of the channel's last live event received, 0 if none
	AgeNS         int64  `json:"age_ns"`          // age of the newest data at Updated (from the stream's start if none yet)
	Stale         bool   `json:"stale"`           // AgeNS reached StaleAfterNS at the last check
	StaleAfterNS  int64  `json:"stale_after_ns"`  // the channel's threshold
	StaleAlerts   uint64 `json:"stale_alerts"`    // times the channel went stale
}

// channelAge watches one channel of one symbol.
type channelAge struct {
	ch     Channel
	name   string
	mon    *resilience.DataQualityMonitor
	alert  *resilience.AlertManager
	lastNS atomic.Int64 // recv time of the channel's last live event; 0 = none
}

// newChannelAges returns the watchers of sym's channels chans (those of its
// shard: a routed venue splits a symbol's channels over connections), in bit
// order. Their alerts log on sym's logger and count in alerts.
func newChannelAges(cfg *settings, chans Channel, sym *symbol, alerts *atomic.Uint64) ([]*channelAge, error) {
	var out []*channelAge
	for _, ch := range chans.topicBits() {
		after := cfg.Stale.threshold(ch)
		mon, err := resilience.NewDataQualityMonitor(resilience.DataQualityConfig{StaleThreshold: after})
		if err != nil {
			return nil, fmt.Errorf("%w: stale threshold: %w", ErrConfig, err)
		}
		a := &channelAge{ch: ch, name: ch.String(), mon: mon, alert: resilience.NewAlertManager()}
		log := sym.log.With("channel", a.name)
		a.alert.OnStaleData(func() {
			alerts.Add(1)
			log.Warn("stale data: no message on the channel for its threshold",
				"stale_after", after, "last_message", a.lastString())
		})
		a.alert.OnRecovered(func() { log.Info("data fresh again", "stale_after", after) })
		out = append(out, a)
	}
	return out, nil
}

func (a *channelAge) lastString() string {
	if ns := a.lastNS.Load(); ns != 0 {
		return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
	}
	return "none"
}

// eventChannel is the subscription channel an event belongs to (0: none).
func eventChannel(ev *Event) Channel {
	switch ev.Type {
	case EventTrade:
		return ChannelTrade
	case EventBookDelta, EventBookSnapshot:
		return ChannelBook
	case EventBBO:
		return ChannelBBO
	case EventTicker:
		return ChannelTicker
	case EventLiquidation:
		return ChannelLiquidation
	case EventKline:
		return KlineChannel(ev.Interval)
	}
	return 0
}

// recordAge notes a live event of sym. Called on the hot path.
func (sym *symbol) recordAge(ev *Event) {
	ch := eventChannel(ev)
	for _, a := range sym.ages {
		if a.ch == ch {
			if ev.RecvTS > a.lastNS.Load() {
				a.lastNS.Store(ev.RecvTS) // one writer: the shard, under its mu
			}
			a.mon.RecordMessage(time.Unix(0, ev.RecvTS))
			return
		}
	}
}

// checkAges feeds every channel's stale signal to its alert manager.
func (sym *symbol) checkAges() {
	for _, a := range sym.ages {
		a.alert.CheckStaleData(a.mon.IsStale())
	}
}

// channelStates reports sym's channels for SymbolState.Channels (nil
// without channels).
func (sym *symbol) channelStates() map[string]ChannelState {
	if len(sym.ages) == 0 {
		return nil
	}
	out := make(map[string]ChannelState, len(sym.ages))
	for _, a := range sym.ages {
		out[a.name] = ChannelState{
			LastMessageTS: a.lastNS.Load(),
			AgeNS:         int64(max(0, a.mon.Age())),
			Stale:         a.alert.Stale(),
			StaleAfterNS:  int64(a.mon.StaleThreshold()),
			StaleAlerts:   a.alert.Alerts(),
		}
	}
	return out
}

// staleLoop checks the data age of every symbol and channel of the stream
// until ctx ends. The monitors count from the start of Run.
func (s *Stream) staleLoop(ctx context.Context) {
	start := time.Now()
	tick := maxStaleTick
	for _, sh := range s.shards {
		for _, sym := range sh.list {
			for _, a := range sym.ages {
				a.mon.RecordMessage(start)
				tick = min(tick, a.mon.StaleThreshold()/4)
			}
		}
	}
	t := time.NewTicker(max(tick, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, sh := range s.shards {
				for _, sym := range sh.list {
					sym.checkAges()
				}
			}
		}
	}
}

// StaleChannels returns "symbol/channel" of every stale channel of the
// stream, sorted (for logs and tests).
func (s *Stream) StaleChannels() []string {
	var out []string
	for _, sh := range s.shards {
		for _, sym := range sh.list {
			for _, a := range sym.ages {
				if a.alert.Stale() {
					out = append(out, sym.name+"/"+a.name)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
