package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/node"
)

// Subscription is one exchange's share of MDB_SUBSCRIBE: the channels to
// take for a list of symbols.
type Subscription struct {
	Exchange string
	Channels bridge.Channel
	Symbols  []string
}

// knownExchanges are the exchange ids the binary can build adapters for.
var knownExchanges = []string{"binance", "bybit", "bybit-linear", "okx", "okx-swap", "binance-usdm"}

// universeExchanges are the exchanges whose symbols may be universe
// patterns (the node reads their instrument lists).
var universeExchanges = []string{"binance", "bybit", "bybit-linear"}

// defaultSubscribe is used when MDB_SUBSCRIBE is empty.
const defaultSubscribe = "binance:trade,book:BTCUSDT"

// maxSpecLen bounds the work done on a subscription spec (a fat-fingered
// or hostile value must not make startup slow).
const maxSpecLen = 1 << 20

var errSpec = errors.New("invalid subscription spec")

// ParseSubscriptions parses a subscription spec:
//
//	<exchange>:<channels>:<symbols>[;<exchange>:<channels>:<symbols>...]
//
// exchange is binance, bybit, bybit-linear, okx or okx-swap (symbols are
// OKX instrument ids there, e.g. BTC-USDT, BTC-USDT-SWAP); channels is a
// comma list of trade, book, bbo, ticker, liquidation, kline.<interval>
// (closed bars) and kline.<interval>+open (closed bars plus open-bar
// updates), intervals 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M as
// the market has them (a channel the market lacks fails when the stream is
// built, naming the allowed ones); symbols is a comma list of exchange
// symbols (upper-cased), or on binance, bybit and bybit-linear universe
// patterns where '*' is any run of characters ("*USDT", "*"): every
// trading symbol of the venue's instrument list that matches, refreshed
// every MDB_UNIVERSE_REFRESH.
// White space around items is ignored. The same exchange may appear in
// several groups; the result merges them per exchange and symbol, in first-
// seen order. Example: "binance:trade,book:BTCUSDT,ETHUSDT;bybit:trade:BTCUSDT".
func ParseSubscriptions(spec string) ([]Subscription, error) {
	if len(spec) > maxSpecLen {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", errSpec, len(spec), maxSpecLen)
	}
	type key struct{ ex, sym string }
	chans := map[key]bridge.Channel{}
	var order []key
	groups := 0
	for group := range strings.SplitSeq(spec, ";") {
		group = strings.TrimSpace(group)
		if group == "" {
			continue
		}
		groups++
		parts := strings.Split(group, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%w: group %q must be <exchange>:<channels>:<symbols>, e.g. binance:trade,book:BTCUSDT", errSpec, group)
		}
		ex := strings.ToLower(strings.TrimSpace(parts[0]))
		if !slices.Contains(knownExchanges, ex) {
			return nil, fmt.Errorf("%w: unknown exchange %q; allowed: %s", errSpec, parts[0], strings.Join(knownExchanges, ", "))
		}
		var ch bridge.Channel
		for c := range strings.SplitSeq(parts[1], ",") {
			c = strings.TrimSpace(c)
			switch strings.ToLower(c) {
			case "trades":
				c = "trade"
			case "books":
				c = "book"
			}
			if !strings.HasPrefix(c, "kline.") { // intervals are case-sensitive: 1m is a minute, 1M a month
				c = strings.ToLower(c)
			}
			one, err := bridge.ParseChannel(c)
			if err != nil {
				return nil, fmt.Errorf("%w: in group %q: %w", errSpec, group, err)
			}
			ch |= one
		}
		n := 0
		for s := range strings.SplitSeq(parts[2], ",") {
			s = strings.ToUpper(strings.TrimSpace(s))
			if s == "" {
				continue
			}
			if node.IsPattern(s) {
				// A universe: '*' is any run of characters; the rest
				// must be identifier characters.
				if err := bridge.ValidateIdent(strings.ReplaceAll(s, "*", "X")); err != nil {
					return nil, fmt.Errorf("%w: symbol pattern in group %q: %w", errSpec, group, err)
				}
				if !slices.Contains(universeExchanges, ex) {
					return nil, fmt.Errorf("%w: symbol pattern %s in group %q: universes are supported on %s", errSpec, s, group, strings.Join(universeExchanges, ", "))
				}
			} else if err := bridge.ValidateIdent(s); err != nil {
				return nil, fmt.Errorf("%w: symbol in group %q: %w", errSpec, group, err)
			}
			k := key{ex, s}
			if _, ok := chans[k]; !ok {
				order = append(order, k)
			}
			chans[k] |= ch
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: group %q lists no symbols", errSpec, group)
		}
	}
	if groups == 0 {
		return nil, fmt.Errorf("%w: empty; e.g. %s", errSpec, defaultSubscribe)
	}
	// Group symbols by exchange and channel set, keeping first-seen order.
	var out []Subscription
	idx := map[struct {
		ex string
		ch bridge.Channel
	}]int{}
	for _, k := range order {
		ik := struct {
			ex string
			ch bridge.Channel
		}{k.ex, chans[k]}
		i, ok := idx[ik]
		if !ok {
			i = len(out)
			idx[ik] = i
			out = append(out, Subscription{Exchange: k.ex, Channels: chans[k]})
		}
		out[i].Symbols = append(out[i].Symbols, k.sym)
	}
	return out, nil
}

// String renders s back in spec form.
func (s Subscription) String() string {
	return s.Exchange + ":" + s.Channels.String() + ":" + strings.Join(s.Symbols, ",")
}

// nodeSubscriptions converts parsed subscriptions to the node's.
func nodeSubscriptions(subs []Subscription) []node.Subscription {
	out := make([]node.Subscription, len(subs))
	for i, s := range subs {
		out[i] = node.Subscription{Exchange: s.Exchange, Channels: s.Channels, Symbols: s.Symbols}
	}
	return out
}

// parseNodeSubscriptions is ParseSubscriptions for the node's runtime
// subscriptions: a replica rejects what MDB_SUBSCRIBE rejects, alike.
func parseNodeSubscriptions(spec string) ([]node.Subscription, error) {
	subs, err := ParseSubscriptions(spec)
	if err != nil {
		return nil, err
	}
	return nodeSubscriptions(subs), nil
}
