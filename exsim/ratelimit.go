package exsim

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// restLimits tracks the per-IP REST limits of both venues.
type restLimits struct {
	mu  sync.Mutex
	bin map[string]*binanceIP
	usd map[string]*binanceIP // Binance USD-M (its own weight budget)
	byb map[string]*bybitIP
}

type binanceIP struct {
	window      int64 // minute index
	used        int
	refused     int
	bannedUntil time.Time
}

type bybitIP struct {
	window      int64 // 5-second index
	count       int
	bannedUntil time.Time
}

func (l *restLimits) init() {
	l.bin = map[string]*binanceIP{}
	l.usd = map[string]*binanceIP{}
	l.byb = map[string]*bybitIP{}
}

// clientIP is the IP part of a request's remote address.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// binanceCharge charges weight to ip in the current minute window. It
// returns the HTTP status to answer (200, 429 or 418), the weight used in
// the window and, when refused, the Retry-After seconds. Requests over the
// limit are refused and not charged; after BinanceBanAfter refusals in a
// window the IP is banned for BinanceBan.
func (s *Server) binanceCharge(ip string, weight int, now time.Time) (status, used int, retry int64) {
	return s.binanceChargeIn(s.limits.bin, s.cfg.BinanceWeightLimit, ip, weight, now)
}

// binanceChargeIn is binanceCharge against the budget of one venue.
func (s *Server) binanceChargeIn(ips map[string]*binanceIP, limit int, ip string, weight int, now time.Time) (status, used int, retry int64) {
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	st := ips[ip]
	if st == nil {
		st = &binanceIP{}
		ips[ip] = st
	}
	win := now.Unix() / 60
	if win != st.window {
		st.window, st.used, st.refused = win, 0, 0
	}
	if now.Before(st.bannedUntil) {
		return http.StatusTeapot, st.used, ceilSeconds(st.bannedUntil.Sub(now))
	}
	if st.used+weight > limit {
		st.refused++
		if st.refused > s.cfg.BinanceBanAfter {
			st.bannedUntil = now.Add(s.cfg.BinanceBan)
			return http.StatusTeapot, st.used, ceilSeconds(s.cfg.BinanceBan)
		}
		next := time.Unix((win+1)*60, 0)
		return http.StatusTooManyRequests, st.used, ceilSeconds(next.Sub(now))
	}
	st.used += weight
	return http.StatusOK, st.used, 0
}

// bybitCharge counts a request of ip in the current 5-second window and
// returns the status (200 or 403) and the requests left in the window.
func (s *Server) bybitCharge(ip string, now time.Time) (status, left int, reset time.Time) {
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.byb[ip]
	if st == nil {
		st = &bybitIP{}
		l.byb[ip] = st
	}
	win := now.Unix() / 5
	reset = time.Unix((win+1)*5, 0)
	if win != st.window {
		st.window, st.count = win, 0
	}
	if now.Before(st.bannedUntil) {
		return http.StatusForbidden, 0, st.bannedUntil
	}
	st.count++
	if st.count > s.cfg.BybitRequestLimit {
		st.bannedUntil = now.Add(s.cfg.BybitBan)
		return http.StatusForbidden, 0, st.bannedUntil
	}
	return http.StatusOK, s.cfg.BybitRequestLimit - st.count, reset
}
