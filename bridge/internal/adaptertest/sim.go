package adaptertest

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/exsim"
)

// StartSim starts the exchange simulator with cfg and closes it when the
// test ends.
func StartSim(t *testing.T, cfg exsim.Config) *exsim.Server {
	t.Helper()
	s, err := exsim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// DialSim opens a WebSocket to url, closed when the test ends.
func DialSim(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return ws
}

// ReadFrame reads one frame from ws within 5 seconds.
func ReadFrame(t *testing.T, ws *websocket.Conn) []byte {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}
