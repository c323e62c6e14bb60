package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/qldata/mdbridge/internal/cli"
)

// progressBar renders Progress on stderr: a redrawn line on a
// terminal, a line every few seconds otherwise.
type progressBar struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	last   time.Time
	phase  string
	drawn  bool
	width  int
	lastLn int
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, tty: cli.IsTerminal(w), width: 30}
}

func (b *progressBar) update(p Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	newPhase := p.Phase+p.Step != b.phase
	if !b.tty && !newPhase && now.Sub(b.last) < 5*time.Second {
		return
	}
	b.phase, b.last = p.Phase+p.Step, now
	frac := -1.0
	switch {
	case p.Total > 0:
		frac = min(float64(p.Done)/float64(p.Total), 1)
	case p.Left > 0 && p.Elapsed > 0:
		frac = float64(p.Elapsed) / float64(p.Elapsed+p.Left)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-14s %-8s ", p.Phase, p.Step)
	if frac >= 0 {
		n := int(frac * float64(b.width))
		sb.WriteString("[" + strings.Repeat("#", n) + strings.Repeat(".", b.width-n) + "]")
		fmt.Fprintf(&sb, " %3.0f%%", 100*frac)
	}
	if p.Total > 0 {
		fmt.Fprintf(&sb, " %d/%d", p.Done, p.Total)
	} else if p.Done > 0 {
		fmt.Fprintf(&sb, " %d", p.Done)
	}
	if p.Rate > 0 {
		fmt.Fprintf(&sb, " %s/s", fmtCount(p.Rate))
	}
	if p.Elapsed > 0 {
		fmt.Fprintf(&sb, " %s", p.Elapsed.Round(100*time.Millisecond))
	}
	line := sb.String()
	if b.tty {
		pad := ""
		if len(line) < b.lastLn {
			pad = strings.Repeat(" ", b.lastLn-len(line))
		}
		fmt.Fprintf(b.w, "\r%s%s", line, pad)
		b.lastLn = len(line)
		b.drawn = true
		return
	}
	fmt.Fprintln(b.w, line)
}

// done ends the progress line.
func (b *progressBar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tty && b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}
