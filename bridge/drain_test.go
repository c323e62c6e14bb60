package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/bybit"
)

// signalHandler is a slog handler that closes ch the first time a record
// with message msg is logged.
type signalHandler struct {
	msg  string
	once *sync.Once
	ch   chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// gatedCollector is a collector whose first Publish blocks until open is
// closed (a publisher applying back-pressure).
type gatedCollector struct {
	*collector
	first  atomic.Bool
	inside chan struct{} // closed when the first Publish blocks
	open   chan struct{}
}

func (g *gatedCollector) Publish(ctx context.Context, evs []bridge.Event) error {
	if g.first.CompareAndSwap(false, true) {
		close(g.inside)
		<-g.open
	}
	return g.collector.Publish(ctx, evs)
}

// bybitTrade is one publicTrade frame with one trade of id i.
func bybitTrade(i int) string {
	return fmt.Sprintf(`{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[`+
		`{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"%d","BT":false,"seq":%d}]}`, 1000+i, i)
}

// TestWriteFailureDrainsReceivedFrames is issue 19's second failure: the
// venue sends its last trades and closes the connection while the bridge's
// reader is busy; the bridge's next write (a ping here, a resubscribe in
// the report) fails with "broken pipe". The bridge used to close the socket
// at once, discarding the frames already received (for Bybit, trades no
// backfill can recover, and nothing counted them). Every frame received
// must be read and delivered.
func TestWriteFailureDrainsReceivedFrames(t *testing.T) {
	t.Parallel()
	const frames = 50
	sendRest := make(chan struct{})
	var conns atomic.Int32
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/v5/public/spot", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		n := conns.Add(1)
		_, sub, err := ws.ReadMessage()
		if err != nil {
			return
		}
		reqID := "1"
		if i := strings.Index(string(sub), `"req_id":"`); i >= 0 {
			reqID = strings.SplitN(string(sub[i+len(`"req_id":"`):]), `"`, 2)[0]
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"success":true,"ret_msg":"subscribe","conn_id":"c","req_id":"`+reqID+`","op":"subscribe"}`))
		if n > 1 {
			for { // later connections: answer nothing, stay open
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(bybitTrade(1)))
		<-sendRest
		for i := 2; i <= frames; i++ {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(bybitTrade(i)))
		}
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second))
		// Closing with the client's pings unread makes its next writes fail.
	})
	mux.HandleFunc("/v5/market/recent-trade", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[]},"retExtInfo":{},"time":1}`))
	})
	mux.HandleFunc("/v5/market/time", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, `{"retCode":0,"retMsg":"OK","result":{"timeSecond":"%d","timeNano":"%d"},"retExtInfo":{},"time":1}`,
			time.Now().Unix(), time.Now().UnixNano())
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ex, err := bybit.New(bybit.Config{WSURL: "ws" + strings.TrimPrefix(srv.URL, "http"), RESTURL: srv.URL, Market: bybit.MarketSpot}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan struct{})
	log := slog.New(signalHandler{msg: "connection failed; reading what it received, then replacing it", once: new(sync.Once), ch: failed})
	col := &gatedCollector{collector: newCollector(), inside: make(chan struct{}), open: make(chan struct{})}
	cfg := testStreamConfig(ex, bridge.ChannelTrade, "BTCUSDT")
	cfg.HeartbeatTimeout = 300 * time.Millisecond // client pings every 100 ms
	s, err := bridge.NewStream(cfg, col, log)
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)

	<-col.inside    // the reader is busy with trade 1
	close(sendRest) // the venue sends the rest and closes
	select {
	case <-failed: // a ping hit the closed connection
	case <-time.After(30 * time.Second):
		t.Fatal("no write failure was logged: the client's pings never hit the closed connection")
	}
	close(col.open)
	eventually(t, 10*time.Second, fmt.Sprintf("%d trades", frames), func() bool { return len(col.tradesOf("bybit", "BTCUSDT")) >= frames })
	got := col.tradesOf("bybit", "BTCUSDT")
	for i, ev := range got {
		if want := fmt.Sprint(1001 + i); ev.ID != want {
			t.Fatalf("trade %d has id %s, want %s", i, ev.ID, want)
		}
	}
	if len(got) != frames {
		t.Fatalf("%d trades, want %d", len(got), frames)
	}
}
