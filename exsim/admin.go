package exsim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// BookSnapshot is a market's full order book as the venue formats it.
type BookSnapshot struct {
	Venue  Venue  `json:"venue"`
	Symbol string `json:"symbol"`
	// LastUpdateID is the last book update id: Binance's lastUpdateId, or
	// Bybit's cross sequence.
	LastUpdateID int64       `json:"last_update_id"`
	Bids         [][2]string `json:"bids"` // best first
	Asks         [][2]string `json:"asks"` // best first
	// BybitU maps each Bybit orderbook depth to the u of its last push.
	BybitU map[int]int64 `json:"bybit_u,omitempty"`
}

// Book returns the current order book of a market. Returns errors
// wrapping ErrUnknownMarket.
func (s *Server) Book(v Venue, symbol string) (BookSnapshot, error) {
	m, err := s.market(v, symbol)
	if err != nil {
		return BookSnapshot{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	bs := BookSnapshot{Venue: v, Symbol: symbol, LastUpdateID: m.updateID}
	conv := func(lv []level) [][2]string {
		out := make([][2]string, len(lv))
		for i, l := range lv {
			out[i] = [2]string{string(m.appendPx(nil, l.px)), string(m.appendQty(nil, l.qty))}
		}
		return out
	}
	bs.Bids, bs.Asks = conv(m.book.sides[bidSide]), conv(m.book.sides[askSide])
	if len(m.views) > 0 {
		bs.BybitU = map[int]int64{}
		for _, vw := range m.views {
			bs.BybitU[vw.depth] = vw.u
		}
	}
	return bs, nil
}

// handleAdmin serves the admin API:
//
//	GET    /admin/faults            stored faults
//	POST   /admin/faults            inject a Fault (JSON body) -> {"id":N}
//	DELETE /admin/faults[/{id}]     clear one or all faults
//	GET    /admin/conns             connections (ConnInfo list)
//	GET    /admin/truth?venue=&symbol=[&per_conn=1]   ground truth (Truth)
//	GET    /admin/book?venue=&symbol=                 order book (BookSnapshot)
//	GET    /admin/markets           markets and rates
//	POST   /admin/rates             {"venue","symbol","trade_rate","book_rate"}
//	POST   /admin/generate          {"venue","symbol","trades","book_updates"}
//	POST   /admin/skew              {"duration":"1.5s"}
//	GET    /admin/stats             server counters
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/admin/")
	q := r.URL.Query()
	reply := func(status int, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			status, b = http.StatusInternalServerError, []byte(`{"error":"encode"}`)
		}
		writeJSONBytes(w, status, b)
	}
	fail := func(status int, err error) { reply(status, map[string]string{"error": err.Error()}) }
	decode := func(v any) bool {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			fail(http.StatusBadRequest, err)
			return false
		}
		return true
	}
	status := func(err error) int {
		switch {
		case errors.Is(err, ErrUnknownMarket), errors.Is(err, ErrUnknownConn):
			return http.StatusNotFound
		case errors.Is(err, ErrClosed):
			return http.StatusServiceUnavailable
		}
		return http.StatusBadRequest
	}
	switch {
	case path == "faults" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.Faults())
	case path == "faults" && r.Method == http.MethodPost:
		var f Fault
		if !decode(&f) {
			return
		}
		id, err := s.InjectFault(f)
		if err != nil {
			fail(status(err), err)
			return
		}
		reply(http.StatusOK, map[string]uint64{"id": id})
	case path == "faults" && r.Method == http.MethodDelete:
		s.ClearFaults()
		reply(http.StatusOK, map[string]bool{"ok": true})
	case strings.HasPrefix(path, "faults/") && r.Method == http.MethodDelete:
		id, err := strconv.ParseUint(strings.TrimPrefix(path, "faults/"), 10, 64)
		if err != nil {
			fail(http.StatusBadRequest, err)
			return
		}
		if err := s.ClearFault(id); err != nil {
			fail(http.StatusNotFound, err)
			return
		}
		reply(http.StatusOK, map[string]bool{"ok": true})
	case path == "conns" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.Conns())
	case path == "truth" && r.Method == http.MethodGet:
		t, err := s.Truth(Venue(q.Get("venue")), q.Get("symbol"))
		if err != nil {
			fail(status(err), err)
			return
		}
		if q.Get("per_conn") == "" {
			for i := range t.Series {
				t.Series[i].PerConn = nil
			}
		}
		reply(http.StatusOK, t)
	case path == "book" && r.Method == http.MethodGet:
		b, err := s.Book(Venue(q.Get("venue")), q.Get("symbol"))
		if err != nil {
			fail(status(err), err)
			return
		}
		reply(http.StatusOK, b)
	case path == "markets" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.Markets())
	case path == "stats" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.Stats())
	case path == "rates" && r.Method == http.MethodPost:
		var mc MarketConfig
		if !decode(&mc) {
			return
		}
		if err := s.SetRates(mc.Venue, mc.Symbol, mc.TradeRate, mc.BookRate); err != nil {
			fail(status(err), err)
			return
		}
		reply(http.StatusOK, map[string]bool{"ok": true})
	case path == "generate" && r.Method == http.MethodPost:
		var g struct {
			Venue       Venue  `json:"venue"`
			Symbol      string `json:"symbol"`
			Trades      int    `json:"trades"`
			BookUpdates int    `json:"book_updates"`
		}
		if !decode(&g) {
			return
		}
		if g.Trades > 10_000_000 || g.BookUpdates > 10_000_000 {
			fail(http.StatusBadRequest, errors.New("at most 10000000 events per request"))
			return
		}
		if err := s.Generate(g.Venue, g.Symbol, g.Trades, g.BookUpdates); err != nil {
			fail(status(err), err)
			return
		}
		reply(http.StatusOK, map[string]bool{"ok": true})
	case path == "skew" && r.Method == http.MethodPost:
		var d struct {
			Duration Duration `json:"duration"`
		}
		if !decode(&d) {
			return
		}
		s.SetClockSkew(time.Duration(d.Duration))
		reply(http.StatusOK, map[string]bool{"ok": true})
	default:
		fail(http.StatusNotFound, errors.New("unknown admin endpoint or method"))
	}
}
