//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// compose runs the repository's docker-compose.yml as one project.
type compose struct {
	t       *testing.T
	cmd     []string // "docker compose" or "docker-compose"
	project string
	env     []string
}

// newCompose finds Compose: the v2 plugin (docker compose) or the v1
// binary (docker-compose). It fails the test when neither works.
func newCompose(t *testing.T, project string, env map[string]string) *compose {
	t.Helper()
	c := &compose{t: t, project: project, env: os.Environ()}
	for k, v := range env {
		c.env = append(c.env, k+"="+v)
	}
	for _, cand := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		args := append(append([]string{}, cand[1:]...), "version")
		if err := exec.CommandContext(t.Context(), cand[0], args...).Run(); err == nil {
			c.cmd = cand
			break
		}
	}
	if c.cmd == nil {
		t.Fatal("neither `docker compose` nor `docker-compose` is available")
	}
	t.Logf("compose: %s, project %s", strings.Join(c.cmd, " "), project)
	return c
}

// run runs a compose subcommand with the sim profile and returns stdout.
func (c *compose) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append(append([]string{}, c.cmd[1:]...),
		"-f", filepath.Join(repoRoot, "docker-compose.yml"), "-p", c.project, "--profile", "sim")
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, c.cmd[0], full...)
	cmd.Env = c.env
	cmd.Dir = repoRoot
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", strings.Join(c.cmd, " "), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (c *compose) mustRun(timeout time.Duration, args ...string) string {
	c.t.Helper()
	out, err := c.run(timeout, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// health returns the health status docker reports for a service's container.
func (c *compose) health(service string) (string, error) {
	id, err := c.run(30*time.Second, "ps", "-q", service)
	if err != nil {
		return "", err
	}
	id = strings.TrimSpace(id)
	if id == "" {
		return "", fmt.Errorf("service %s has no container", service)
	}
	out, err := exec.CommandContext(c.t.Context(), "docker", "inspect", "--format",
		"{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}", id).Output()
	return strings.TrimSpace(string(out)), err
}

// TestComposeSimProfile: `docker compose --profile sim up` with the
// repository's docker-compose.yml and the local images reaches healthy,
// data flows into the stream (read through the published NATS port and
// with `mdbridge tail` inside the bridge container), and `down -v` removes
// everything including the JetStream volume.
func TestComposeSimProfile(t *testing.T) {
	project := composePrefix + ownPID
	c := newCompose(t, project, map[string]string{
		"MDBRIDGE_IMAGE": bridgeImage, "NATS_IMAGE": natsImage,
		// 0: random free host ports (on 127.0.0.1), so the test never
		// collides with anything listening on the defaults.
		"NATS_PORT": "0", "NATS_MONITOR_PORT": "0", "MDBRIDGE_HTTP_PORT": "0",
	})
	downDone := false
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := c.run(time.Minute, "logs", "--no-color", "--tail", "60"); err == nil {
				t.Logf("---- compose logs ----\n%s", out)
			}
		}
		if !downDone {
			if _, err := c.run(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	start := time.Now()
	c.mustRun(5*time.Minute, "up", "-d")
	t.Logf("compose up -d returned after %s", time.Since(start).Round(100*time.Millisecond))

	// Compose v1 has no --wait: poll docker's health status.
	waitFor(t, 3*time.Minute, "sim and mdbridge-sim healthy", func() error {
		for _, svc := range []string{"sim", "mdbridge-sim"} {
			h, err := c.health(svc)
			if err != nil {
				return err
			}
			if h != "running healthy" {
				return fmt.Errorf("%s: %s", svc, h)
			}
		}
		h, err := c.health("nats")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(h, "running") {
			return fmt.Errorf("nats: %s", h)
		}
		return nil
	})
	t.Logf("sim and mdbridge-sim healthy, nats running, %s after up", time.Since(start).Round(100*time.Millisecond))

	port := strings.TrimSpace(c.mustRun(time.Minute, "port", "nats", "4222"))
	if !strings.HasPrefix(port, "127.0.0.1:") {
		t.Fatalf("NATS published on %q; want 127.0.0.1 only", port)
	}
	_, js := newLab(t).connectURL("nats://" + port)
	runFor(t, js, 8*time.Second, "compose data flow")
	r := newStreamReader(t, js, nil)
	// Data flows: the stream fills with well-formed events of every
	// subscribed market (the compose default subscription).
	want := []market{{"binance", "BTCUSDT"}, {"binance", "ETHUSDT"}, {"bybit", "BTCUSDT"}}
	waitFor(t, 60*time.Second, "trades of every subscribed market in the stream", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := r.catchUp(ctx); err != nil {
			return err
		}
		for _, m := range want {
			if len(r.trades[m]) < 20 {
				return fmt.Errorf("%s: %d trades so far", m, len(r.trades[m]))
			}
		}
		if r.byType["book.delta"] < 20 || r.byType["book.snapshot"] < 1 {
			return fmt.Errorf("book events so far: %v", r.byType)
		}
		return nil
	})
	n := r.checkWellFormed()
	for _, m := range want {
		t.Logf("%s: %d trades", m, len(r.trades[m]))
	}
	t.Logf("compose: %d well-formed messages with unique ids read from stream MD (%v)", n, r.byType)

	// The operator CLI inside the container reads the same stream.
	out := c.mustRun(time.Minute, "exec", "-T", "mdbridge-sim", "mdbridge", "tail", "-all", "-n", "5", "md.binance.BTCUSDT")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.Contains(out, "BTCUSDT") {
		t.Errorf("mdbridge tail -n 5 printed %d lines:\n%s", len(lines), out)
	}
	t.Logf("mdbridge tail -n 5 in mdbridge-sim printed %d events", len(lines))

	c.mustRun(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "5")
	downDone = true
	vols, err := exec.CommandContext(t.Context(), "docker", "volume", "ls", "-q", "--filter", "name="+project).Output()
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(string(vols)); v != "" {
		t.Errorf("volumes left after down -v: %s", v)
	}
	ps, err := exec.CommandContext(t.Context(), "docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+project).Output()
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(string(ps)); v != "" {
		t.Errorf("containers left after down -v: %s", v)
	}
	t.Logf("compose down -v removed every container and the JetStream volume")
}
