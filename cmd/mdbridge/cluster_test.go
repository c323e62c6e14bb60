package main

import (
	"strings"
	"testing"
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
