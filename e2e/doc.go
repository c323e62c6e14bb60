//go:build e2e

// Package e2e holds mdbridge's end-to-end tests: real processes in
// containers (testcontainers-go), built locally from this checkout by
// deploy/docker/build.sh (images mdbridge:dev and mdbridge-nats:dev; no
// registry is contacted). Run them with
//
//	TESTCONTAINERS_RYUK_DISABLED=true go test -tags e2e -count=1 -timeout 20m -v ./e2e/
//
// Scenarios, each checked against the simulator's ground truth (GET
// /admin/truth of `mdbridge sim`) by reading the whole MD stream back:
//
//   - TestNATSNodeKill: a 3-node NATS cluster with the stream at R3; the
//     stream leader is killed (SIGKILL) and restarted while the bridge
//     publishes: every trade exactly once.
//   - TestActiveActiveBridgeKill: two bridge replicas on the same
//     subscriptions; one is killed with SIGKILL: every trade exactly once,
//     and md_state reports the dead replica's entries stale.
//   - TestNetworkPartition: the bridge is cut off from NATS for 20 s
//     (docker network disconnect) while it keeps reading the simulator:
//     nothing lost or duplicated after the network heals.
//   - TestClusterScale: bridges in cluster mode (R=2) against a 3-node
//     NATS cluster scale 2 → 4 → 2 (two started, then two stopped with
//     SIGTERM at once) over 16 units: after each step md_state shows every
//     unit on exactly the 2 replicas rendezvous hashing assigns it,
//     CONNECTED; the stopped replicas drain and exit 0; every Binance
//     trade exactly once and every consumer book (12 Binance, 4 Bybit)
//     equal to the simulator's.
//   - TestComposeSimProfile: `docker compose --profile sim up` with the
//     repository's docker-compose.yml reaches healthy and data flows.
//
// Docker must be available: without it the suite fails (it never skips).
// Tests run one after another (the machine has two cores); every container
// and network a test creates is removed when it ends. Host ports are bound to
// 127.0.0.1 only.
//
// Environment: MDB_E2E_BUILD=0 reuses images built beforehand instead of
// running deploy/docker/build.sh; MDBRIDGE_IMAGE and NATS_IMAGE name the
// images (default mdbridge:dev and mdbridge-nats:dev).
package e2e
