package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/qldata/mdbridge/resilience"
)

// The seed's reconnect loop: retry with backoff until connected or out of
// attempts.
func ExampleReconnectionManager() {
	manager, err := resilience.NewReconnectionManager(resilience.ReconnectConfig{
		MaxAttempts:   5,
		InitialDelay:  time.Millisecond,
		MaxDelay:      4 * time.Millisecond,
		BackoffFactor: 2,
	})
	if err != nil {
		panic(err)
	}
	calls := 0
	connect := func() error { // fails three times, then connects
		calls++
		if calls <= 3 {
			return errors.New("connection refused")
		}
		return nil
	}
	ctx := context.Background()
	for manager.ShouldReconnect() {
		if err := connect(); err != nil {
			manager.RecordFailure()
			fmt.Printf("Connection failed: %v. Retry %d in at most %s\n", err, manager.Attempts(), manager.Ceiling())
			if err := manager.Wait(ctx); err != nil { // sleeps Delay(), honours ctx
				return
			}
			continue
		}
		manager.RecordSuccess()
		fmt.Println("connected; attempts reset to", manager.Attempts())
		break
	}
	// Output:
	// Connection failed: connection refused. Retry 1 in at most 1ms
	// Connection failed: connection refused. Retry 2 in at most 2ms
	// Connection failed: connection refused. Retry 3 in at most 4ms
	// connected; attempts reset to 0
}

// The seed's heartbeat check: record pongs (any inbound frame), reconnect
// when the connection is no longer alive.
func ExampleHeartbeatMonitor() {
	monitor, err := resilience.NewHeartbeatMonitor(resilience.HeartbeatConfig{
		Timeout:      30 * time.Second,
		PingInterval: 10 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	onPong := func() { monitor.RecordHeartbeat() }
	onPong()
	fmt.Println("alive:", monitor.IsAlive())

	// The last frame arrived 31 seconds ago.
	monitor.RecordHeartbeatAt(time.Now().Add(-31 * time.Second))
	if !monitor.IsAlive() {
		fmt.Printf("Connection dead. Silent for more than %s\n", monitor.Timeout())
	}

	// A runner waits on the stale signal instead of polling IsAlive.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the watching goroutine
	select {
	case <-monitor.Stale(ctx):
		fmt.Println("stale: reconnect")
	case <-time.After(time.Second):
		fmt.Println("still alive")
	}
	// Output:
	// alive: true
	// Connection dead. Silent for more than 30s
	// stale: reconnect
}

// The seed's duplicate filter, for Binance trade ids.
func ExampleMessageDeduplicator() {
	dedup, err := resilience.NewMessageDeduplicator[int64](resilience.DedupConfig{
		WindowSize: 1000,
		TTL:        60 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	processed, duplicates := 0, 0
	handleMessage := func(tradeID int64) {
		if dedup.IsDuplicate(tradeID) {
			duplicates++
			return // skip duplicate
		}
		dedup.Record(tradeID)
		processed++
	}
	// A reconnect replays trades 102 and 103.
	for _, id := range []int64{101, 102, 103, 102, 103, 104} {
		handleMessage(id)
	}
	fmt.Printf("Processed: %d, Duplicates: %d\n", processed, duplicates)

	// Record alone does both steps: it reports whether the id is new.
	fmt.Println(dedup.Record(105), dedup.Record(105))
	// Output:
	// Processed: 4, Duplicates: 2
	// true false
}

// The seed's rate limiter, with Binance's limits from the exchange table.
func ExampleRateLimitManager() {
	limits, ok := resilience.ExchangeDefaults("binance")
	fmt.Println(limits.RequestsPerMinute, limits.WSConnectionsPerIP, ok)

	limiter, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{
		RequestsPerMinute: limits.RequestsPerMinute,
		Burst:             100,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	makeRequest := func(weight int) error {
		if err := limiter.AcquireN(ctx, weight); err != nil { // waits if rate limited
			return err
		}
		// response := api.Call(); on 429: limiter.Pause(time.Now().Add(retryAfter))
		// and feed X-MBX-USED-WEIGHT-1M: limiter.UpdateUsedWeight(used, receivedAt)
		return nil
	}
	if err := makeRequest(1); err != nil {
		panic(err)
	}
	if err := makeRequest(20); err != nil { // a depth snapshot costs more weight
		panic(err)
	}
	fmt.Println("used this minute:", limiter.UsedWeight() >= 21)
	// Output:
	// 1200 5 true
	// used this minute: true
}

// The seed's gap detection on order-book update ids: on a gap, fetch a
// snapshot and restart the tracker from it.
func ExampleSequenceTracker() {
	tracker := resilience.NewSequenceTracker()
	handleMessage := func(seq int64) {
		if !tracker.Check(seq) {
			fmt.Printf("Sequence gap! Missing: %v\n", tracker.Gaps())
			// request_order_book_snapshot(); then restart from it:
			tracker.Reset()
			return
		}
		fmt.Println("process", seq)
	}
	for _, seq := range []int64{100, 101, 102, 105, 200, 201} {
		handleMessage(seq)
	}
	// Output:
	// process 100
	// process 101
	// process 102
	// Sequence gap! Missing: [103-104]
	// process 200
	// process 201
}

// Binance depth updates carry a range U..u; after a REST snapshot the
// tracker starts from the snapshot's lastUpdateId.
func ExampleSequenceTracker_ObserveRange() {
	tracker := resilience.NewSequenceTracker()
	tracker.ResetTo(160) // snapshot lastUpdateId
	for _, u := range [][2]int64{{150, 158}, {157, 163}, {164, 170}, {175, 180}} {
		fmt.Printf("U=%d u=%d: %v\n", u[0], u[1], tracker.ObserveRange(u[0], u[1]))
	}
	fmt.Println("missing:", tracker.Gaps())
	// Output:
	// U=150 u=158: duplicate
	// U=157 u=163: in-order
	// U=164 u=170: in-order
	// U=175 u=180: gap
	// missing: [171-174]
}

// fakeExchange answers ServerTime with a clock 1.5 s ahead of ours.
type fakeExchange struct{}

func (fakeExchange) ServerTime(context.Context) (time.Time, error) {
	return time.Now().Add(1500 * time.Millisecond), nil
}

// The seed's clock sync: measure the offset, convert server timestamps.
func ExampleTimeSyncManager() {
	sync, err := resilience.NewTimeSyncManager(resilience.TimeSyncConfig{Samples: 5}, nil)
	if err != nil {
		panic(err)
	}
	if err := sync.Sync(context.Background(), fakeExchange{}); err != nil {
		panic(err)
	}
	fmt.Printf("Clock offset: %dms\n", sync.Offset().Round(100*time.Millisecond).Milliseconds())

	serverTimestamp := time.UnixMilli(1_700_000_001_500)
	local := sync.ToLocal(serverTimestamp)
	fmt.Println("local:", local.Round(100*time.Millisecond).UnixMilli())
	// Output:
	// Clock offset: 1500ms
	// local: 1700000000000
}

// The seed's connection state callbacks and manual transitions.
func ExampleConnectionStateManager() {
	stateMgr := resilience.NewConnectionStateManager()
	stateMgr.OnConnected(func(resilience.Transition) { fmt.Println("Connected!") })
	stateMgr.OnReconnecting(func(t resilience.Transition) { fmt.Println("Reconnecting...", t.Err) })
	stateMgr.OnDisconnected(func(resilience.Transition) { fmt.Println("Disconnected") })
	stateMgr.OnFailed(func(resilience.Transition) { fmt.Println("Connection failed") })

	_ = stateMgr.Transition(resilience.Connecting)
	_ = stateMgr.Transition(resilience.Connected)
	fmt.Printf("State: %s\n", stateMgr.State())
	fmt.Println("Time in state under a second:", stateMgr.TimeInState() < time.Second)

	_ = stateMgr.TransitionErr(resilience.Reconnecting, errors.New("read timeout"))
	_ = stateMgr.Transition(resilience.Failed)
	err := stateMgr.Transition(resilience.Connected) // not in the diagram
	fmt.Println(errors.Is(err, resilience.ErrInvalidTransition), err)
	fmt.Println("transitions:", len(stateMgr.History()))
	// Output:
	// Connected!
	// State: CONNECTED
	// Time in state under a second: true
	// Reconnecting... read timeout
	// Connection failed
	// true resilience: invalid state transition: FAILED -> CONNECTED
	// transitions: 4
}

// The seed's custom configuration, loaded from the environment.
func ExampleResilienceConfig() {
	os.Setenv("MDBEXAMPLE_MAX_RECONNECT_ATTEMPTS", "20")
	os.Setenv("MDBEXAMPLE_RECONNECT_DELAY_MAX", "120s")
	defer os.Unsetenv("MDBEXAMPLE_MAX_RECONNECT_ATTEMPTS")
	defer os.Unsetenv("MDBEXAMPLE_RECONNECT_DELAY_MAX")

	var config resilience.ResilienceConfig
	if err := envconfig.Process("MDBEXAMPLE", &config); err != nil {
		panic(err)
	}
	if err := config.Validate(); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", config)
	fmt.Printf("%+v\n", config.ReconnectConfig())
	fmt.Printf("%+v\n", config.HeartbeatConfig())

	config.ReconnectDelay = -time.Second
	fmt.Println(config.Validate())

	off := resilience.DisabledResilienceConfig() // the seed's resilience=False
	fmt.Println(off.AutoReconnect, off.SequenceTracking)
	// Output:
	// {AutoReconnect:true MaxReconnectAttempts:20 ReconnectDelay:1s ReconnectDelayMax:2m0s HeartbeatInterval:30s RateLimitEnabled:true SequenceTracking:true TimeSyncEnabled:true}
	// {MaxAttempts:20 InitialDelay:1s MaxDelay:2m0s BackoffFactor:2}
	// {Timeout:30s PingInterval:10s}
	// resilience: invalid configuration: ResilienceConfig.ReconnectDelay (RECONNECT_DELAY): must not be negative (got -1s)
	// false false
}

// The seed's production setup: stale-data monitoring with edge-triggered
// alerts.
func ExampleAlertManager() {
	monitor, err := resilience.NewDataQualityMonitor(resilience.DataQualityConfig{StaleThreshold: 10 * time.Second})
	if err != nil {
		panic(err)
	}
	alerts := resilience.NewAlertManager()
	alerts.OnStaleData(func() { fmt.Println("Data stale!") })
	alerts.OnRecovered(func() { fmt.Println("Data fresh again") })

	handleData := func(lastTimestamp time.Time) {
		monitor.RecordMessage(lastTimestamp)
		alerts.CheckStaleData(monitor.IsStale())
	}
	handleData(time.Now().Add(-time.Minute)) // replayed old data: ignored, still within the start-up grace
	alerts.CheckStaleData(true)              // e.g. a periodic check after 10s of nothing
	alerts.CheckStaleData(true)              // edge-triggered: no second alert
	handleData(time.Now())
	// Output:
	// Data stale!
	// Data fresh again
}
