//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Images under test, built from this checkout.
var (
	bridgeImage = envOr("MDBRIDGE_IMAGE", "mdbridge:dev")
	natsImage   = envOr("NATS_IMAGE", "mdbridge-nats:dev")
)

// repoRoot is the repository root (tests run in e2e/).
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// TestMain checks that Docker works, builds the images once and runs the
// scenarios. It fails (never skips) when Docker is unavailable.
func TestMain(m *testing.M) {
	// No reaper container (it would have to be pulled); every test removes
	// what it created in t.Cleanup. Mapped ports are bound to 127.0.0.1, so
	// wait strategies and endpoints must use it too (testcontainers would
	// otherwise pick the default gateway when it runs inside a container).
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker is required for the e2e tests and is not usable: %w (is the daemon running and /var/run/docker.sock accessible?)", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker is required for the e2e tests and does not answer: %w (is the daemon running and /var/run/docker.sock accessible?)", err)
	}
	if n, err := sweep(ctx, cli); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: removing leftovers of earlier runs: %v\n", err)
	} else if n > 0 {
		fmt.Fprintf(os.Stderr, "e2e: removed %d containers, networks and volumes left by earlier runs that died\n", n)
	}
	if os.Getenv("MDB_E2E_BUILD") != "0" {
		start := time.Now()
		cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "deploy", "docker", "build.sh"))
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "MDBRIDGE_IMAGE="+bridgeImage, "NATS_IMAGE="+natsImage)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		fmt.Fprintf(os.Stderr, "e2e: building %s and %s with deploy/docker/build.sh (MDB_E2E_BUILD=0 reuses existing images)\n", bridgeImage, natsImage)
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("deploy/docker/build.sh: %w", err)
		}
		fmt.Fprintf(os.Stderr, "e2e: images built in %s\n", time.Since(start).Round(time.Second))
	}
	for _, img := range []string{bridgeImage, natsImage} {
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			return fmt.Errorf("image %s is missing (run deploy/docker/build.sh, or unset MDB_E2E_BUILD): %w", img, err)
		}
	}
	return nil
}
