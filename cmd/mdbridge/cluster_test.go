package main

import (
	"strings"
	"testing"
	"time"
)

// TestRedundancyConfig: MDB_REDUNDANCY must be a whole number of at least
// 1; a bad value is refused naming the variable and what it allows, and
// MDB_CLUSTER turns the node's cluster mode on with it.
func TestRedundancyConfig(t *testing.T) {
	for _, tc := range []struct{ v, want string }{
		{"0", "MDB_REDUNDANCY: 0; allowed: at least 1"},
		{"-2", "MDB_REDUNDANCY: -2; allowed: at least 1"},
		{"two", `MDB_REDUNDANCY: "two" is not a number`},
		{"", `MDB_REDUNDANCY: "" is not a number`},
	} {
		clearEnv(t)
		t.Setenv("MDB_REDUNDANCY", tc.v)
		_, err := loadConfig()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("MDB_REDUNDANCY=%q: error %v, want %q", tc.v, err, tc.want)
		}
	}
	clearEnv(t)
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.clusterConfig() != nil {
		t.Fatal("cluster mode on by default; MDB_CLUSTER defaults to false")
	}
	clearEnv(t)
	t.Setenv("MDB_CLUSTER", "true")
	t.Setenv("MDB_REDUNDANCY", "3")
	if c, err = loadConfig(); err != nil {
		t.Fatal(err)
	}
	cc := c.clusterConfig()
	if cc == nil || cc.Redundancy != 3 || cc.Bucket != "md_members" {
		t.Fatalf("cluster config %+v, want redundancy 3 on md_members", cc)
	}
	clearEnv(t)
	t.Setenv("MDB_MEMBERS_BUCKET", "md_state")
	if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), "MDB_MEMBERS_BUCKET") {
		t.Fatalf("members bucket = state bucket: %v", err)
	}
}

// TestIPShare: replicas sharing one egress IP each take their share of the
// per-IP REST budgets; a share below 1 is refused naming the variable.
func TestIPShare(t *testing.T) {
	clearEnv(t)
	t.Setenv("MDB_IP_SHARE", "3")
	t.Setenv("MDB_BINANCE_WEIGHT_PER_MINUTE", "6000")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.publisherConfig()
	if err != nil {
		t.Fatal(err)
	}
	v := c.nodeConfig(pc).Venues
	if v.BinanceWeightPerMinute != 2000 || v.BybitRequestsPerMinute != 40 {
		t.Fatalf("budgets %d weight/min, %d requests/min; want 2000 and 40", v.BinanceWeightPerMinute, v.BybitRequestsPerMinute)
	}
	clearEnv(t)
	t.Setenv("MDB_IP_SHARE", "0")
	if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), "MDB_IP_SHARE: 0") {
		t.Fatalf("MDB_IP_SHARE=0: %v", err)
	}
}

// TestClusterTimingConfig: MDB_CLUSTER_HEARTBEAT (default 1s, at least
// 100ms) and MDB_CLUSTER_EXPIRY (default 3s, at least 1s and twice the
// heartbeat) reach the cluster config; bad values are refused naming the
// variable.
func TestClusterTimingConfig(t *testing.T) {
	clearEnv(t)
	t.Setenv("MDB_CLUSTER", "true")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.clusterConfig(); cc.Heartbeat != time.Second || cc.Expiry != 3*time.Second {
		t.Fatalf("cluster heartbeat %s expiry %s, want 1s and 3s", cc.Heartbeat, cc.Expiry)
	}
	clearEnv(t)
	t.Setenv("MDB_CLUSTER", "true")
	t.Setenv("MDB_CLUSTER_HEARTBEAT", "250ms")
	t.Setenv("MDB_CLUSTER_EXPIRY", "1s")
	if c, err = loadConfig(); err != nil {
		t.Fatal(err)
	}
	if cc := c.clusterConfig(); cc.Heartbeat != 250*time.Millisecond || cc.Expiry != time.Second {
		t.Fatalf("cluster heartbeat %s expiry %s, want 250ms and 1s", cc.Heartbeat, cc.Expiry)
	} else if cc.Instance = "a"; cc.Validate() != nil {
		t.Fatalf("accepted by the configuration, refused by the coordinator: %v", cc.Validate())
	}
	for _, tc := range []struct{ hb, exp, want string }{
		{"50ms", "3s", "MDB_CLUSTER_HEARTBEAT: 50ms is below the minimum 100ms"},
		{"0s", "3s", "MDB_CLUSTER_HEARTBEAT: 0s is below the minimum 100ms"},
		{"1s", "900ms", "MDB_CLUSTER_EXPIRY: 900ms is below the minimum 1s"},
		{"1s", "1500ms", "MDB_CLUSTER_EXPIRY: 1.5s is below twice MDB_CLUSTER_HEARTBEAT (1s)"},
		{"soon", "3s", "CLUSTER_HEARTBEAT"},
	} {
		clearEnv(t)
		t.Setenv("MDB_CLUSTER_HEARTBEAT", tc.hb)
		t.Setenv("MDB_CLUSTER_EXPIRY", tc.exp)
		if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("heartbeat %s expiry %s: error %v, want %q", tc.hb, tc.exp, err, tc.want)
		}
	}
}
