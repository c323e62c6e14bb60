package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/qldata/mdbridge/publisher"
)

// childProcess is this binary serving a part of the benchmark in a child
// process (`mdbridge bench -serve-nats <dir>` or `-serve-sim`): it prints
// its URL on the first line of stdout and exits when its stdin closes.
type childProcess struct {
	what  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
	dir   string // removed at stop, if set
}

// startNATSChild starts an embedded NATS server in a child process,
// pinned to CPU pin if pin >= 0.
func startNATSChild(ctx context.Context, pin int, stderr io.Writer) (*childProcess, error) {
	dir, err := os.MkdirTemp("", "mdbridge-bench-nats-")
	if err != nil {
		return nil, err
	}
	return startChild(ctx, "NATS server", "nats://", dir, pin, stderr, "-serve-nats", dir)
}

// startSimChild starts the scale test's simulator in a child process.
func startSimChild(ctx context.Context, symbols int, rate float64, stderr io.Writer) (*childProcess, error) {
	return startChild(ctx, "simulator", "http://", "", -1, stderr, "-serve-sim",
		"-symbols", strconv.Itoa(symbols), "-rate", strconv.FormatFloat(rate, 'f', -1, 64))
}

// startChild runs `<this binary> bench args...` (on CPU pin only, if pin
// >= 0) and waits for the URL it prints (which must start with prefix).
func startChild(ctx context.Context, what, prefix, dir string, pin int, stderr io.Writer, args ...string) (*childProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &childProcess{what: what, dir: dir, cmd: exec.Command(exe, append([]string{command}, args...)...)}
	p.cmd.Stderr = stderr
	out, err := p.cmd.StdoutPipe()
	if err == nil {
		p.stdin, err = p.cmd.StdinPipe()
	}
	if err == nil {
		if pin >= 0 {
			err = startPinned(p.cmd, pin)
		} else {
			err = p.cmd.Start()
		}
	}
	if err != nil {
		if dir != "" {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	if err := p.awaitURL(ctx, out, prefix); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// awaitURL reads the child's first line of out, its URL, which must start
// with prefix, and drains the rest.
func (p *childProcess) awaitURL(ctx context.Context, out io.Reader, prefix string) error {
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		for s.Scan() { // drain
		}
	}()
	select {
	case u, ok := <-line:
		if ok && strings.HasPrefix(u, prefix) {
			p.url = u
			return nil
		}
		return fmt.Errorf("child %s did not start (first line %q)", p.what, u)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("child %s did not report its URL within 30s", p.what)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cpu returns the child's CPU time so far (Linux /proc; 0 elsewhere).
func (p *childProcess) cpu() time.Duration { return procCPU(p.cmd.Process.Pid) }

// stop closes the child's stdin (it shuts down and exits), waits for it,
// and removes its store.
func (p *childProcess) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// procCPU reads a process's user + system CPU time from /proc/<pid>/stat
// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// serveNATSChild is the child side of -nats-process: an embedded NATS
// server on a random loopback port until stdin closes or ctx ends.
func serveNATSChild(ctx context.Context, dir string, stdin io.Reader, stdout, stderr io.Writer) int {
	srv, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Host: "127.0.0.1", Port: -1, StoreDir: dir}, nil)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge bench -serve-nats: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(stdout, srv.ClientURL())
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdin); close(eof) }()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return exitOK
}

// serveSimChild is the child side of -sim-process: the scale test's
// simulator on a random loopback port until stdin closes or ctx ends.
func serveSimChild(ctx context.Context, symbols int, rate float64, weightLimit int, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, stdin); cancel() }()
	err := ServeSimLimit(ctx, symbols, rate, weightLimit, log, func(url string) { fmt.Fprintln(stdout, url) })
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge bench -serve-sim: %v\n", err)
		return exitFailure
	}
	return exitOK
}
