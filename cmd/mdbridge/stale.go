package main

import (
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
)

// parseStaleChannels parses MDB_STALE_AFTER_CHANNELS: a comma list of
// <channel>=<duration>, e.g. "book=30s,trade=5m". Channel names are those
// of MDB_SUBSCRIBE (a plural "trades" is accepted too); every duration must
// be positive.
func parseStaleChannels(s string) (map[bridge.Channel]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[bridge.Channel]time.Duration{}
	for item := range strings.SplitSeq(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("%q is not <channel>=<duration>, e.g. book=30s,trade=5m", item)
		}
		ch, ok := channelNamed(strings.TrimSpace(name))
		if !ok {
			return nil, fmt.Errorf("unknown channel %q; allowed: trade, book, bbo, ticker, liquidation, kline.<interval>", name)
		}
		if _, dup := out[ch]; dup {
			return nil, fmt.Errorf("channel %q listed twice", name)
		}
		d, err := time.ParseDuration(strings.TrimSpace(val))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%s: want a positive Go duration such as 30s or 5m", name, val)
		}
		out[ch] = d
	}
	return out, nil
}

// channelNamed resolves a single channel's name as MDB_SUBSCRIBE writes it
// (trade, book, bbo, ticker, liquidation, kline.<interval>; a plural
// "trades" or "books" is accepted too).
func channelNamed(name string) (bridge.Channel, bool) {
	name = strings.ToLower(name)
	ch, err := bridge.ParseChannel(name)
	if err != nil {
		ch, err = bridge.ParseChannel(strings.TrimSuffix(name, "s"))
	}
	if err != nil || bits.OnesCount64(uint64(ch)) != 1 {
		return 0, false
	}
	return ch, true
}
