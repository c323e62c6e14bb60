package exsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Server is the exchange simulator: one HTTP listener on loopback serving
// Binance Spot and Bybit v5 WebSocket streams and REST endpoints, plus the
// admin API. Create it with New, then Start; Close stops it. Its methods
// are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	markets map[Venue]map[string]*market
	mlist   []*market
	listing listing // instrument-list status (listing.go)
	up      websocket.Upgrader
	clock   func() time.Time // wall clock; a seam for rate-limit tests

	mu      sync.Mutex
	ln      net.Listener
	hs      *http.Server
	conns   map[uint64]*conn
	recs    map[uint64]*connRecord
	retired retiredConns
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup // generators and the HTTP server
	connWG  sync.WaitGroup // connection goroutines; Add only under mu while !closed

	nextConnID atomic.Uint64
	skew       [6]atomic.Int64 // per venue index, ns
	baseSkew   atomic.Int64    // Config.ClockSkew or SetClockSkew, ns
	stats      serverStats
	faults     faultTable
	limits     restLimits
}

type serverStats struct {
	slowDisconnects, rateDisconnects, pongTimeouts, ageCuts, faultCloses atomic.Uint64
	accepted                                                             atomic.Uint64
}

// Stats are server-wide counters.
type Stats struct {
	Accepted        uint64 `json:"accepted"`         // WebSocket connections accepted
	Open            int    `json:"open"`             // connections open now
	SlowDisconnects uint64 `json:"slow_disconnects"` // clients cut because their send queue overflowed
	RateDisconnects uint64 `json:"rate_disconnects"` // Binance clients cut for exceeding the inbound message limit
	PongTimeouts    uint64 `json:"pong_timeouts"`    // Binance clients cut for not answering pings
	AgeCuts         uint64 `json:"age_cuts"`         // connections closed at their maximum age
	FaultCloses     uint64 `json:"fault_closes"`     // connections closed by a fault
	// ForgottenConns are closed connections whose records were dropped
	// (Config.ClosedConns); Conns no longer lists them.
	ForgottenConns uint64 `json:"forgotten_conns"`
}

// New validates cfg and builds a server; it does not listen yet (Start).
// A nil logger discards logs. Returns errors wrapping ErrConfig.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     logger,
		markets: map[Venue]map[string]*market{},
		clock:   time.Now,
		conns:   map[uint64]*conn{},
		recs:    map[uint64]*connRecord{},
		up: websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			CheckOrigin:     func(*http.Request) bool { return true },
		},
	}
	s.limits.init()
	for _, v := range allVenues() {
		s.markets[v] = map[string]*market{}
	}
	for _, mc := range cfg.Markets {
		m := newMarket(s, mc)
		m.idx = len(s.mlist)
		s.markets[mc.Venue][mc.Symbol] = m
		s.mlist = append(s.mlist, m)
	}
	s.baseSkew.Store(int64(cfg.ClockSkew))
	for i := range s.skew {
		s.skew[i].Store(int64(cfg.ClockSkew))
	}
	return s, nil
}

// Start listens on Config.Addr and serves until ctx ends or Close is
// called; it returns once the listener is open. Configured faults are
// injected first. Returns ErrStarted, ErrClosed or a listen error.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return ErrStarted
	}
	for _, f := range s.cfg.Faults {
		if _, err := s.injectLocked(f); err != nil {
			return err
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("exsim: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.started = true
	s.hs = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, m := range s.mlist {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			m.run(runCtx)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-runCtx.Done():
		}
	}()
	s.log.Info("exchange simulator listening", "addr", ln.Addr().String(), "markets", len(s.mlist))
	return nil
}

// Close stops the server now: the listener, every connection (abruptly)
// and the generators. It waits for its goroutines and is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	hs, cancel := s.hs, s.cancel
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	var err error
	if hs != nil {
		err = hs.Close()
	}
	for _, c := range conns {
		c.abort("server closed")
	}
	s.wg.Wait()
	s.connWG.Wait()
	return err
}

// Addr returns the listen address ("127.0.0.1:port"), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *Server) base(scheme string) string {
	a := s.Addr()
	if a == "" {
		return ""
	}
	return scheme + "://" + a
}

// BinanceWSURL is the Binance stream base, like wss://stream.binance.com:9443:
// clients append /ws/<stream> or /stream?streams=...
func (s *Server) BinanceWSURL() string { return s.base("ws") }

// BinanceRESTURL is the Binance REST base, like https://api.binance.com:
// clients append /api/v3/...
func (s *Server) BinanceRESTURL() string { return s.base("http") }

// BybitWSURL is the Bybit stream base, like wss://stream.bybit.com: clients
// append /v5/public/spot or /v5/public/linear.
func (s *Server) BybitWSURL() string { return s.base("ws") }

// BinanceUSDMWSURL is the WebSocket base for the binance-usdm adapter (it
// dials <base>/public/stream and <base>/market/stream).
func (s *Server) BinanceUSDMWSURL() string { return s.base("ws") }

// BinanceUSDMRESTURL is the REST base for the binance-usdm adapter (/fapi/v1/...).
func (s *Server) BinanceUSDMRESTURL() string { return s.base("http") }

// BybitRESTURL is the Bybit REST base, like https://api.bybit.com: clients
// append /v5/market/...
func (s *Server) BybitRESTURL() string { return s.base("http") }

// OKXWSURL is the base for OKX WebSocket clients (they append
// /ws/v5/public or /ws/v5/business).
func (s *Server) OKXWSURL() string { return s.base("ws") }

// OKXRESTURL is the base URL for OKX REST clients.
func (s *Server) OKXRESTURL() string { return s.base("http") }

// AdminURL is the base of the admin API (/admin/faults, /admin/conns,
// /admin/truth, /admin/book, /admin/rates, /admin/generate, /admin/stats).
func (s *Server) AdminURL() string { return s.base("http") }

// Stats returns server-wide counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	open, forgotten := len(s.conns), s.retired.forgotten
	s.mu.Unlock()
	return Stats{
		Accepted:        s.stats.accepted.Load(),
		Open:            open,
		ForgottenConns:  forgotten,
		SlowDisconnects: s.stats.slowDisconnects.Load(),
		RateDisconnects: s.stats.rateDisconnects.Load(),
		PongTimeouts:    s.stats.pongTimeouts.Load(),
		AgeCuts:         s.stats.ageCuts.Load(),
		FaultCloses:     s.stats.faultCloses.Load(),
	}
}

// Markets returns the configured markets with their current rates.
func (s *Server) Markets() []MarketConfig {
	out := make([]MarketConfig, 0, len(s.mlist))
	for _, m := range s.mlist {
		tr, br := m.rates()
		out = append(out, MarketConfig{Venue: m.venue, Symbol: m.symbol, TradeRate: tr, BookRate: br})
	}
	return out
}

func (s *Server) market(v Venue, symbol string) (*market, error) {
	if m := s.markets[v][symbol]; m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("%w: %s %s", ErrUnknownMarket, v, symbol)
}

// SetRates changes a market's trade and book-update rates (events per
// second, 0 = idle) at run time. When it returns, the generator no longer
// produces events at the old rates: after SetRates(v, s, 0, 0), Generated
// is final until the rates or Generate change it. Returns errors wrapping
// ErrUnknownMarket or ErrConfig.
func (s *Server) SetRates(v Venue, symbol string, tradeRate, bookRate float64) error {
	m, err := s.market(v, symbol)
	if err != nil {
		return err
	}
	if tradeRate < 0 || bookRate < 0 || tradeRate > maxRate || bookRate > maxRate {
		return fmt.Errorf("%w: rates must be within 0..%g per second", ErrConfig, float64(maxRate))
	}
	m.setRates(tradeRate, bookRate)
	return nil
}

// Generate synchronously generates trades trades (whole taker orders, so
// up to two more) and bookUpdates book updates on a market and enqueues
// them to its subscribers, independently of the configured rates. Tests
// use it with idle markets for exact control. Returns errors wrapping
// ErrUnknownMarket.
func (s *Server) Generate(v Venue, symbol string, trades, bookUpdates int) error {
	m, err := s.market(v, symbol)
	if err != nil {
		return err
	}
	m.step(max(trades, 0), max(bookUpdates, 0))
	return nil
}

// SetClockSkew sets the skew of every venue's clock (event times and the
// time endpoints). Skew faults, while stored, take precedence.
func (s *Server) SetClockSkew(d time.Duration) {
	s.baseSkew.Store(int64(d))
	s.faultsChanged(nil)
}

func venueIndex(v Venue) int {
	switch v {
	case BybitSpot:
		return 1
	case BybitLinear:
		return 2
	case OKXSpot:
		return 3
	case OKXSwap:
		return 4
	case BinanceUSDM:
		return 5
	}
	return 0
}

// nowNs is venue v's clock in Unix ns, skew included.
func (s *Server) nowNs(v Venue) int64 {
	return s.clock().UnixNano() + s.skew[venueIndex(v)].Load()
}

// Conns lists the connections accepted so far, by id: every open one,
// once the subscriptions in its URL are active, and the last
// Config.ClosedConns closed ones.
func (s *Server) Conns() []ConnInfo {
	recs := s.records()
	out := make([]ConnInfo, 0, len(recs))
	for _, r := range recs {
		ci := r.info()
		if ci.Open && !r.ready.Load() {
			continue
		}
		s.mu.Lock()
		c := s.conns[r.ID]
		s.mu.Unlock()
		if c != nil {
			c.mu.Lock()
			ci.Subscriptions = append(append([]string(nil), c.binStreams...), c.topics...)
			c.mu.Unlock()
		}
		out = append(out, ci)
	}
	return out
}

// register adds an accepted connection and applies the faults that target
// new connections.
func (s *Server) register(c *conn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.conns[c.id] = c
	s.recs[c.id] = c.rec
	s.connWG.Add(1)
	s.mu.Unlock()
	s.stats.accepted.Add(1)
	s.faults.onConnect(s, c)
	return true
}

// connEnded forgets a closed connection. Its record stays until
// Config.ClosedConns later closes; the connection's writer has exited, so
// the record is final.
func (s *Server) connEnded(c *conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.retireLocked(c.id)
	s.mu.Unlock()
}

// liveConns returns the open connections, by id.
func (s *Server) liveConns() []*conn {
	s.mu.Lock()
	out := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.handleBinanceWS)
	mux.HandleFunc("/ws/", s.handleBinanceWS)
	mux.HandleFunc("/stream", s.handleBinanceWS)
	mux.HandleFunc("/api/", s.handleBinanceREST)
	mux.HandleFunc("/public/", s.handleUSDMWS)
	mux.HandleFunc("/market/", s.handleUSDMWS)
	mux.HandleFunc("/fapi/", s.handleUSDMREST)
	mux.HandleFunc("/v5/public/", s.handleBybitWS)
	mux.HandleFunc("/v5/market/", s.handleBybitREST)
	mux.HandleFunc("/ws/v5/", s.handleOKXWS)
	mux.HandleFunc("/api/v5/", s.handleOKXREST)
	mux.HandleFunc("/admin/", s.handleAdmin)
	return mux
}

// accept upgrades a request and runs the connection until it ends.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, v Venue, setup func(c *conn), read func(c *conn, mt int, data []byte)) {
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade answered the client
	}
	c := newConn(s, v, ws, r.URL.RequestURI(), r.RemoteAddr)
	if !s.register(c) {
		_ = ws.NetConn().Close()
		return
	}
	defer s.connWG.Done()
	c.log.Debug("connection accepted", "path", c.rec.Path)
	if setup != nil {
		setup(c)
	}
	c.rec.ready.Store(true)
	c.start(func(mt int, data []byte) { read(c, mt, data) })
}

// checkAddr validates a listen address: host:port, and loopback unless
// any is set.
func checkAddr(addr string, any bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %v", addr, err)
	}
	if any || host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not loopback (set AllowNonLoopback to permit it)", addr)
	}
	return nil
}

// writeJSONBytes writes a JSON body with a status.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// drainBody discards what is left of a request body.
func drainBody(r *http.Request) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	}
}
