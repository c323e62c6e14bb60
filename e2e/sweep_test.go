//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Every container and network a test creates carries pidLabel with the test
// process's id, and compose projects are named composePrefix+pid, so
// leftovers of a run that died before its cleanups (go test -timeout
// panics, SIGKILL) can be told apart from the resources of a run still
// going on. No reaper container is used (it would have to be pulled).
const (
	pidLabel      = "mdbridge.e2e.pid"
	composePrefix = "mdbridge-e2e-"
	composeLabel  = "com.docker.compose.project"
)

var ownPID = strconv.Itoa(os.Getpid())

// deadOwner reports whether pid names a test process that no longer exists.
func deadOwner(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(n, 0), syscall.ESRCH)
}

// ownerOf returns the test process id owning a resource by its labels.
func ownerOf(labels map[string]string) (string, bool) {
	if pid, ok := labels[pidLabel]; ok {
		return pid, true
	}
	if p, ok := labels[composeLabel]; ok && strings.HasPrefix(p, composePrefix) {
		return strings.TrimPrefix(p, composePrefix), true
	}
	return "", false
}

// sweep removes containers, networks and volumes left by e2e runs whose
// process is gone. It returns how many it removed.
func sweep(ctx context.Context, cli *testcontainers.DockerClient) (int, error) {
	removed := 0
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		if pid, ok := ownerOf(c.Labels); ok && deadOwner(pid) {
			if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				errs = append(errs, err)
				continue
			}
			removed++
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return removed, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns.Items {
		if pid, ok := ownerOf(n.Labels); ok && deadOwner(pid) {
			if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
				errs = append(errs, err)
				continue
			}
			removed++
		}
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{})
	if err != nil {
		return removed, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vs.Items {
		if pid, ok := ownerOf(v.Labels); ok && deadOwner(pid) {
			if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				errs = append(errs, err)
				continue
			}
			removed++
		}
	}
	return removed, errors.Join(errs...)
}
