package bench

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// TestStateViewCounts checks how the replica mode reads md_state: a unit
// counts an owner only for a CONNECTED entry of a live instance refreshed
// within publisher.DefaultStaleAfter, and a book is synced once its entry
// has a snapshot.
func TestStateViewCounts(t *testing.T) {
	now := time.Now()
	v := &stateView{entries: map[string]publisher.StateEntry{}}
	put := func(sym, inst, state string, age time.Duration, snaps uint64) {
		st := bridge.SymbolState{Exchange: "binance", Symbol: sym, Instance: inst, State: state, Updated: now.Add(-age)}
		st.Snapshots = snaps
		v.entries["binance."+sym+"."+inst] = publisher.StateEntry{Key: "binance." + sym + "." + inst, State: st}
	}
	put("A", "r1", "CONNECTED", 0, 1)
	put("A", "r2", "CONNECTED", 0, 0)
	put("B", "r1", "CONNECTED", 0, 1)
	put("B", "r3", "CONNECTED", 0, 1)
	put("C", "r2", "CONNECTING", 0, 0)
	put("C", "r3", "CONNECTED", 0, 1)
	put("D", "r2", "CONNECTED", 2*publisher.DefaultStaleAfter, 1) // stale: its writer stopped

	if n, most := v.carried("", 2); n != 2 || most != 2 {
		t.Errorf("carried(2) = %d units, most %d owners; want 2, 2", n, most)
	}
	if n, _ := v.carried("r3", 2); n != 1 {
		t.Errorf("carried(2) without r3 = %d, want 1 (A)", n)
	}
	if n, _ := v.carried("r3", 1); n != 2 {
		t.Errorf("carried(1) without r3 = %d, want 2 (A, B)", n)
	}
	if n := v.booksSynced(""); n != 4 {
		t.Errorf("booksSynced = %d, want 4", n)
	}
	if got := v.owned("r1"); got["r1"] != 0 || got["r2"] != 1 || got["r3"] != 2 {
		t.Errorf("owned without r1 = %v", got)
	}
}

// TestMetricValue reads a gauge as the handover's member watch does.
func TestMetricValue(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("# HELP mdbridge_cluster_members x\nmdbridge_cluster_members_other 7\nmdbridge_cluster_members 2\n"))
	}))
	defer srv.Close()
	if v, ok := metricValue(srv.Client(), srv.URL, "mdbridge_cluster_members"); !ok || v != 2 {
		t.Errorf("metricValue = %v, %v; want 2, true", v, ok)
	}
	if _, ok := metricValue(srv.Client(), srv.URL, "mdbridge_absent"); ok {
		t.Error("an absent metric was found")
	}
}
