package bridge

// shardPlan is the share of topics one connection slot carries. All topics
// of a symbol stay on one connection so its trades and book are sequenced
// together, except on a routed venue (see Router), where each route has
// its own connections.
type shardPlan struct {
	symbols  []string
	topics   []Topic
	channels Channel // the channels its topics are of
}

// planLimits bound what one connection may carry.
type planLimits struct {
	perConn  int              // topics per connection; 0 = unlimited
	maxChars int              // subscribe arg characters per connection; 0 = unlimited
	cost     func(string) int // characters a symbol's topics cost (used with maxChars)
	maxConns int              // desired connection cap; 0 = none
	venueMax int              // venue's own topics-per-connection limit; 0 = unlimited
}

// topicsOf returns the topics of one symbol for the channel set ch.
func topicsOf(symbol string, ch Channel) []Topic {
	var ts []Topic
	for _, c := range ch.topicBits() {
		ts = append(ts, Topic{Symbol: symbol, Channel: c})
	}
	return ts
}

// planShards splits symbols over as few connections as the limits allow,
// evenly: the number of connections n is the least that fits every symbol,
// and each connection takes about total/n topics. If n exceeds maxConns the
// per-connection count is raised up to venueMax to fit; it reports whether
// the plan still exceeds maxConns (the caller warns).
func planShards(symbols []string, ch Channel, lim planLimits) ([]shardPlan, bool) {
	perSym := len(topicsOf("x", ch))
	total := perSym * len(symbols)
	per := lim.perConn
	if lim.maxConns > 0 && per > 0 && ceilDiv(total, per) > lim.maxConns {
		// Fewer, fuller connections, within the venue's limit.
		want := ceilDiv(total, lim.maxConns)
		if lim.venueMax > 0 && want > lim.venueMax {
			want = lim.venueMax
		}
		if want > per {
			per = want
		}
	}
	if per > 0 && per < perSym {
		per = perSym
	}
	fits := func(n, chars, addTopics, addChars int) bool {
		if per > 0 && n+addTopics > per {
			return false
		}
		if lim.maxChars > 0 && chars+addChars > lim.maxChars && n > 0 {
			return false
		}
		return true
	}
	// First pass: the least number of connections, greedily.
	count := 0
	n, chars := 0, 0
	for _, s := range symbols {
		c := 0
		if lim.maxChars > 0 && lim.cost != nil {
			c = lim.cost(s)
		}
		if count == 0 || !fits(n, chars, perSym, c) {
			count++
			n, chars = 0, 0
		}
		n += perSym
		chars += c
	}
	// Second pass: the same count, balanced by symbols (every symbol has
	// the same number of topics).
	perShard := ceilDiv(len(symbols), count)
	plans := make([]shardPlan, 0, count)
	var cur *shardPlan
	n, chars = 0, 0
	for _, s := range symbols {
		c := 0
		if lim.maxChars > 0 && lim.cost != nil {
			c = lim.cost(s)
		}
		if cur == nil || len(cur.symbols) >= perShard || !fits(n, chars, perSym, c) {
			plans = append(plans, shardPlan{channels: ch})
			cur = &plans[len(plans)-1]
			n, chars = 0, 0
		}
		cur.symbols = append(cur.symbols, s)
		cur.topics = append(cur.topics, topicsOf(s, ch)...)
		n += perSym
		chars += c
	}
	over := lim.maxConns > 0 && len(plans) > lim.maxConns
	return plans, over
}

func ceilDiv(a, b int) int {
	if b <= 0 {
		return 1
	}
	return (a + b - 1) / b
}
