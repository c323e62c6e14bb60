//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// lab is one test's set of containers and networks. Everything it creates
// is removed when the test ends; on failure the last lines of every
// container's log are written to the test log first.
type lab struct {
	t      *testing.T
	ctx    context.Context
	docker *testcontainers.DockerClient
}

func newLab(t *testing.T) *lab {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(t.Context())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return &lab{t: t, ctx: t.Context(), docker: cli}
}

// network creates a user-defined bridge network removed at the end of the test.
func (l *lab) network() *testcontainers.DockerNetwork {
	l.t.Helper()
	nw, err := tcnetwork.New(l.ctx, tcnetwork.WithLabels(map[string]string{"mdbridge.e2e": l.t.Name(), pidLabel: ownPID}))
	if err != nil {
		l.t.Fatalf("create network: %v", err)
	}
	testcontainers.CleanupNetwork(l.t, nw)
	return nw
}

// attach is a network to join and the aliases to have on it.
type attach struct {
	nw      *testcontainers.DockerNetwork
	aliases []string
}

// spec describes a container to start.
type spec struct {
	role     string // for logs, e.g. "nats-0"
	image    string
	cmd      []string
	env      map[string]string
	networks []attach
	ports    []string // container ports published on 127.0.0.1 (random host port)
	wait     wait.Strategy
}

// node is a running (or killed) container.
type node struct {
	role string
	c    *testcontainers.DockerContainer
	l    *lab
}

// localPorts publishes each port on 127.0.0.1 only (never on every
// interface) with a random host port.
func localPorts(ports []string) func(*container.HostConfig) {
	return func(hc *container.HostConfig) {
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		for _, p := range ports {
			hc.PortBindings[network.MustParsePort(p)] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}
		}
	}
}

// start creates and starts a container; it fails the test on error.
func (l *lab) start(s spec) *node {
	l.t.Helper()
	opts := []testcontainers.ContainerCustomizer{
		// Progress is logged by the tests themselves; failures dump log tails.
		testcontainers.WithLogger(tclog.NewNoopLogger()),
		testcontainers.WithLabels(map[string]string{"mdbridge.e2e": l.t.Name(), "mdbridge.e2e.role": s.role, pidLabel: ownPID}),
		testcontainers.WithExposedPorts(s.ports...),
		testcontainers.WithHostConfigModifier(localPorts(s.ports)),
	}
	if len(s.cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(s.cmd...))
	}
	if len(s.env) > 0 {
		opts = append(opts, testcontainers.WithEnv(s.env))
	}
	for _, a := range s.networks {
		opts = append(opts, tcnetwork.WithNetwork(a.aliases, a.nw))
	}
	if s.wait != nil {
		opts = append(opts, testcontainers.WithWaitStrategy(s.wait))
	}
	begin := time.Now()
	c, err := testcontainers.Run(l.ctx, s.image, opts...)
	n := &node{role: s.role, c: c, l: l}
	if c != nil {
		testcontainers.CleanupContainer(l.t, c)
		// Registered after CleanupContainer, so it runs before the container is removed.
		l.t.Cleanup(func() {
			if l.t.Failed() {
				l.t.Logf("---- last log lines of %s ----\n%s", s.role, n.logTail(80))
			}
		})
	}
	if err != nil {
		l.t.Fatalf("start %s (%s): %v", s.role, s.image, err)
	}
	l.t.Logf("%s (%s, container %.12s) ready in %s", s.role, s.image, c.GetContainerID(), time.Since(begin).Round(time.Millisecond))
	return n
}

// endpoint returns "127.0.0.1:<host port>" of a published container port.
func (n *node) endpoint(port string) string {
	n.l.t.Helper()
	var lastErr error
	// The mapping can take a moment to appear after a restart.
	for range 50 {
		p, err := n.c.MappedPort(n.l.ctx, port)
		if err == nil {
			return fmt.Sprintf("127.0.0.1:%d", p.Num())
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	n.l.t.Fatalf("%s: mapped port %s: %v", n.role, port, lastErr)
	return ""
}

// kill sends SIGKILL (docker kill): no graceful shutdown of any kind.
func (n *node) kill() {
	n.l.t.Helper()
	if _, err := n.l.docker.ContainerKill(n.l.ctx, n.c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		n.l.t.Fatalf("kill %s: %v", n.role, err)
	}
	// Wait until docker reports it stopped.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st, err := n.c.State(n.l.ctx)
		if err == nil && !st.Running {
			n.l.t.Logf("%s killed (SIGKILL), exit code %d", n.role, st.ExitCode)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.l.t.Fatalf("%s still running 20s after SIGKILL", n.role)
}

// stop stops the container gracefully (docker stop: SIGTERM, then SIGKILL
// after timeout) and returns its exit code. Unlike the other methods it
// returns errors, so it may run in a goroutine.
func (n *node) stop(timeout time.Duration) (int, error) {
	if err := n.c.Stop(n.l.ctx, &timeout); err != nil {
		return 0, fmt.Errorf("stop %s: %w", n.role, err)
	}
	// Through the lab's client: Stop closes the container's own.
	ins, err := n.l.docker.ContainerInspect(n.l.ctx, n.c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("inspect %s: %w", n.role, err)
	}
	st := ins.Container.State
	if st == nil || st.Running {
		return 0, fmt.Errorf("%s still running after docker stop", n.role)
	}
	return st.ExitCode, nil
}

// restart starts a killed container again (same file system, same networks).
func (n *node) restart() {
	n.l.t.Helper()
	if err := n.c.Start(n.l.ctx); err != nil {
		n.l.t.Fatalf("restart %s: %v", n.role, err)
	}
	n.l.t.Logf("%s restarted", n.role)
}

// running reports whether the container is running.
func (n *node) running() bool {
	st, err := n.c.State(n.l.ctx)
	return err == nil && st.Running
}

// disconnect removes the container from a network (a partition: its
// packets on that network go nowhere).
func (n *node) disconnect(nw *testcontainers.DockerNetwork) {
	n.l.t.Helper()
	if _, err := n.l.docker.NetworkDisconnect(n.l.ctx, nw.ID, client.NetworkDisconnectOptions{Container: n.c.GetContainerID(), Force: true}); err != nil {
		n.l.t.Fatalf("disconnect %s from network %s: %v", n.role, nw.Name, err)
	}
	n.l.t.Logf("%s disconnected from network %s", n.role, nw.Name)
}

// connect attaches the container to a network again.
func (n *node) connect(nw *testcontainers.DockerNetwork, aliases ...string) {
	n.l.t.Helper()
	if _, err := n.l.docker.NetworkConnect(n.l.ctx, nw.ID, client.NetworkConnectOptions{
		Container: n.c.GetContainerID(), EndpointConfig: &network.EndpointSettings{Aliases: aliases},
	}); err != nil {
		n.l.t.Fatalf("connect %s to network %s: %v", n.role, nw.Name, err)
	}
	n.l.t.Logf("%s connected to network %s again", n.role, nw.Name)
}

// ip returns the container's address on a network.
func (n *node) ip(nw *testcontainers.DockerNetwork) string {
	n.l.t.Helper()
	ins, err := n.c.Inspect(n.l.ctx)
	if err != nil {
		n.l.t.Fatalf("inspect %s: %v", n.role, err)
	}
	ep := ins.NetworkSettings.Networks[nw.Name]
	if ep == nil || !ep.IPAddress.IsValid() {
		n.l.t.Fatalf("%s has no address on network %s", n.role, nw.Name)
	}
	return ep.IPAddress.String()
}

// logs returns the container's whole log (stdout and stderr).
func (n *node) logs() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := n.c.Logs(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

// logTail returns the last lines of the container's log.
func (n *node) logTail(lines int) string {
	s, err := n.logs()
	if err != nil {
		return "(logs unavailable: " + err.Error() + ")"
	}
	var all []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// countLog counts the log lines containing substr.
func (n *node) countLog(substr string) int {
	s, err := n.logs()
	if err != nil {
		return -1
	}
	return strings.Count(s, substr)
}
