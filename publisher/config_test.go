package publisher

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestConfigDefaults(t *testing.T) {
	d := Config{}.withDefaults()
	want := Config{
		Stream: "MD", SubjectPrefix: "md", Storage: jetstream.FileStorage, Replicas: 1,
		DuplicateWindow: 2 * time.Minute, MaxAge: 24 * time.Hour, Discard: jetstream.DiscardOld,
		KVBucket: "md_state", StateTTL: time.Hour, StateRefresh: 5 * time.Second, StaleAfter: 15 * time.Second,
		ControlPrefix: "mdctl", BufferMessages: 200_000, BufferBytes: 256 << 20, DropPolicy: Block,
		MaxInFlight: 4096, AckTimeout: 5 * time.Second,
		SnapshotConcurrency: 4, SnapshotRate: 20, SnapshotBurst: 40, SnapshotMaxWaiters: 1024,
		SnapshotTimeout: 10 * time.Second, RequestTimeout: 15 * time.Second,
	}
	if d != want {
		t.Errorf("defaults\n got %+v\nwant %+v", d, want)
	}
	if d.streamSubject() != "md.>" {
		t.Errorf("stream subject %q", d.streamSubject())
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config invalid: %v", err)
	}
	// A small buffer caps the default window.
	if got := (Config{BufferMessages: 100}).withDefaults().MaxInFlight; got != 100 {
		t.Errorf("MaxInFlight with BufferMessages 100 = %d", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Stream: "M.D"}, "Config.Stream"},
		{Config{Stream: "M D"}, "Config.Stream"},
		{Config{SubjectPrefix: "md.*"}, "Config.SubjectPrefix"},
		{Config{SubjectPrefix: "md."}, "Config.SubjectPrefix"},
		{Config{SubjectPrefix: ">"}, "Config.SubjectPrefix"},
		{Config{ControlPrefix: "ctl >"}, "Config.ControlPrefix"},
		{Config{KVBucket: "md.state"}, "Config.KVBucket"},
		{Config{Replicas: 7}, "Config.Replicas"},
		{Config{Replicas: -1}, "Config.Replicas"},
		{Config{Storage: 9}, "Config.Storage"},
		{Config{Discard: 9}, "Config.Discard"},
		{Config{DuplicateWindow: -time.Second}, "Config.DuplicateWindow"},
		{Config{DuplicateWindow: 2 * time.Hour, MaxAge: time.Hour}, "Config.DuplicateWindow"},
		{Config{StateTTL: time.Second}, "Config.StateTTL"},
		{Config{AckTimeout: -1}, "Config.AckTimeout"},
		{Config{MaxBytes: -2}, "Config.MaxBytes"},
		{Config{BufferMessages: -1}, "Config.BufferMessages"},
		{Config{BufferBytes: -1}, "Config.BufferBytes"},
		{Config{BufferMessages: 10, MaxInFlight: 11}, "Config.MaxInFlight"},
		{Config{MaxInFlight: -3}, "Config.MaxInFlight"},
		{Config{DropPolicy: 5}, "Config.DropPolicy"},
		{Config{SnapshotConcurrency: -1}, "Config.SnapshotConcurrency"},
		{Config{SnapshotRate: -1}, "Config.SnapshotRate"},
		{Config{SnapshotBurst: -1}, "Config.SnapshotBurst"},
		{Config{SnapshotMaxWaiters: -1}, "Config.SnapshotMaxWaiters"},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field+":") {
			t.Errorf("%+v: %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
	// Every bad field is reported at once.
	err := Config{Stream: "a b", Replicas: 9}.Validate()
	if err == nil || !strings.Contains(err.Error(), "Config.Stream") || !strings.Contains(err.Error(), "Config.Replicas") {
		t.Errorf("joined errors: %v", err)
	}
	if err := (Config{SubjectPrefix: "corp.md", ControlPrefix: "corp.mdctl", Storage: jetstream.MemoryStorage, Replicas: 3}).Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want DropPolicy
		ok   bool
	}{{"", Block, true}, {"block", Block, true}, {"Drop-Oldest", DropOldest, true}, {"drop_oldest", DropOldest, true}, {"lifo", Block, false}} {
		got, err := ParseDropPolicy(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDropPolicy(%q) = %v, %v", tc.in, got, err)
		}
		if err == nil && tc.in != "" {
			if back, _ := ParseDropPolicy(got.String()); back != got {
				t.Errorf("%v does not round-trip", got)
			}
		}
	}
	for _, tc := range []struct {
		in   string
		want jetstream.StorageType
		ok   bool
	}{{"", jetstream.FileStorage, true}, {"file", jetstream.FileStorage, true}, {"MEMORY", jetstream.MemoryStorage, true}, {"disk", 0, false}} {
		got, err := ParseStorage(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseStorage(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestSecretRedaction(t *testing.T) {
	s := Secret("hunter2-very-secret")
	var logs syncBuffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "s", s, "group", struct{ P Secret }{s})
	j, _ := json.Marshal(struct{ P Secret }{s})
	out := fmt.Sprintf("%v %s %+v %#v %q", s, s, s, s, s) + logs.String() + string(j)
	if strings.Contains(out, "hunter2") {
		t.Errorf("secret leaked: %s", out)
	}
	if s.Reveal() != "hunter2-very-secret" {
		t.Error("Reveal lost the value")
	}
	if Secret("").String() != "" {
		t.Error("empty secret should print empty")
	}
}
