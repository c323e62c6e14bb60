package bridge

import (
	"context"
	"fmt"
)

// Streams routes per-symbol requests to the stream that carries the symbol:
// a process runs one Stream per exchange and channel set, and the
// publisher's snapshot control service needs one source for all of them.
// It implements the publisher's SnapshotSource and SymbolFilter.
type Streams []*Stream

// Find returns the stream serving exchange and symbol, or nil.
func (ss Streams) Find(exchange, symbol string) *Stream {
	for _, s := range ss {
		if s.Serves(exchange, symbol) {
			return s
		}
	}
	return nil
}

// Snapshot fetches a fresh snapshot through the stream carrying the
// symbol's order book (or, if none does, the symbol at all). It returns an
// error wrapping ErrUnknownSymbol when none carries it.
func (ss Streams) Snapshot(ctx context.Context, exchange, symbol string) (Event, error) {
	var s *Stream
	for _, c := range ss {
		if c.Serves(exchange, symbol) && (s == nil || c.hasBook(symbol)) {
			s = c
		}
	}
	if s == nil {
		return Event{}, fmt.Errorf("%w: %s %s is not subscribed on this instance", ErrUnknownSymbol, exchange, symbol)
	}
	return s.Snapshot(ctx, exchange, symbol)
}

// Serves reports whether one of the streams carries exchange and symbol.
func (ss Streams) Serves(exchange, symbol string) bool { return ss.Find(exchange, symbol) != nil }
