package publisher

// Long outages: JetStream's msg-ID deduplication spans only the stream's
// duplicate window, counted from when the first copy was stored. A message
// buffered through an outage longer than the window (this replica cut off
// from NATS while another replica kept publishing the same events, or an
// earlier attempt of this replica stored with its ack lost) would be
// stored a second time by its re-send. So before a message that has waited
// more than 3/4 of the window since it was queued (or since it was last
// checked) is sent, the pump asks the stream whether it holds the message's
// Nats-Msg-Id already: it reads the headers of the stream's messages on the
// message's subject stored since shortly before the message was queued.
// Messages found are not sent (counted as already stored and acknowledged
// as duplicates); the others are sent. If the stream cannot be read, they
// are sent anyway: counted as unverified and logged at ERROR, since the
// stream may then hold them twice.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// verifyTimeout bounds one check of the stream.
	verifyTimeout = 15 * time.Second
	// verifyMaxMessages caps the stream messages one check reads.
	verifyMaxMessages = 2_000_000
	// verifyMaxEntries caps the messages one check decides about; the
	// rest are checked in the next round.
	verifyMaxEntries = 100_000
	verifyBatch      = 1000
	// verifySlack is how long before a message was queued the search for
	// it starts at least: another replica may have received and stored it
	// earlier, and the server's clock may differ from ours.
	verifySlack = 10 * time.Second
)

// verifyAfter is how long a message may wait before its send needs a check:
// 3/4 of the duplicate window, leaving 1/4 for another replica having
// stored it before this one queued it, and for the send itself.
func (p *JetStream) verifyAfter() time.Duration { return p.cfg.DuplicateWindow * 3 / 4 }

// needsVerify reports whether the next message to send has waited too long
// to rely on the duplicate window. p.mu is held.
func (p *JetStream) needsVerify(now time.Time) bool {
	if p.noVerify || p.provision.js == nil { // tests without a server
		return false
	}
	limit := now.Add(-p.verifyAfter())
	for i := p.sendIdx; i < p.q.len(); i++ {
		if e := p.q.at(i); e.state == stQueued {
			return e.checked.Before(limit)
		}
	}
	return false
}

// verifyCand is a message to look for in the stream.
type verifyCand struct {
	e  *entry
	id string // e's msg id, cloned: e may be recycled while p.mu is released
}

// verifyOld checks the queued messages that waited too long against the
// stream and resolves those it holds already. It releases p.mu while it
// reads the stream (the pump sends nothing meanwhile). p.mu is held.
func (p *JetStream) verifyOld(now time.Time) {
	limit := now.Add(-p.verifyAfter())
	var cands []verifyCand
	subjects := map[string]time.Time{} // subject -> earliest queue time of its candidates
	for i := p.sendIdx; i < p.q.len() && len(cands) < verifyMaxEntries; i++ {
		e := p.q.at(i)
		if e.state != stQueued || !e.checked.Before(limit) {
			continue
		}
		cands = append(cands, verifyCand{e, strings.Clone(e.vals[0])})
		if t, ok := subjects[e.subject]; !ok || e.enq.Before(t) {
			subjects[e.subject] = e.enq
		}
	}
	if len(cands) == 0 {
		return
	}
	want := make(map[string]struct{}, len(cands))
	for _, c := range cands {
		want[c.id] = struct{}{}
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	go func() { // Close must not wait for the check
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	lookup := p.storedIDs
	if p.lookupStored != nil {
		lookup = p.lookupStored
	}
	stored, err := lookup(ctx, subjects, want)
	cancel()
	p.mu.Lock()
	checked := time.Now()
	var found, unverified int
	for _, c := range cands {
		e := c.e
		if e.state != stQueued || e.vals[0] != c.id {
			continue // dropped (DropOldest, Close) while the stream was read
		}
		if seq, ok := stored[c.id]; ok {
			e.state = stAcked
			p.ackedAhead++
			e.resolve(Ack{Stream: p.cfg.Stream, Sequence: seq, Duplicate: true}, nil)
			found++
			continue
		}
		e.checked = checked // a copy stored from now on is within the window of this send
		if err != nil {
			unverified++
		}
	}
	if found > 0 {
		p.c.alreadyStored.Add(uint64(found))
		p.log.Info("messages buffered longer than 3/4 of the duplicate window are in the stream already; not re-sent",
			"already_stored", found, "checked", len(cands), "duplicate_window", p.cfg.DuplicateWindow)
	}
	if unverified > 0 {
		p.c.unverified.Add(uint64(unverified))
		p.log.Error("cannot check whether the stream holds messages buffered longer than 3/4 of the duplicate window; sending them anyway: the stream may store them twice",
			"unverified", unverified, "duplicate_window", p.cfg.DuplicateWindow, "err", err)
	}
	p.popHead()
}

// storedIDs reads, headers only, the stream's messages on the subjects
// stored since verifySlack before each subject's earliest time, and returns
// the stream sequences of the wanted msg ids among them. It stops early
// when every wanted id is found.
func (p *JetStream) storedIDs(ctx context.Context, subjects map[string]time.Time, want map[string]struct{}) (map[string]uint64, error) {
	js := p.provision.js
	if js == nil {
		return nil, errors.New("no JetStream context")
	}
	st, err := js.Stream(ctx, p.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", p.cfg.Stream, err)
	}
	var start time.Time
	filter := make([]string, 0, len(subjects))
	for s, t := range subjects {
		filter = append(filter, s)
		if start.IsZero() || t.Before(start) {
			start = t
		}
	}
	slices.Sort(filter)
	start = start.Add(-max(verifySlack, p.cfg.DuplicateWindow/2))
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &start,
		FilterSubjects:    filter,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		MemoryStorage:     true,
		InactiveThreshold: 30 * time.Second, // removed by the server if the delete below fails
	})
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	defer func() {
		go func() { // not on the pump's time
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = st.DeleteConsumer(dctx, cons.CachedInfo().Name)
		}()
	}()
	pending := cons.CachedInfo().NumPending // the messages stored until now: later ones are not ours to find
	if pending > verifyMaxMessages {
		return nil, fmt.Errorf("%d messages to read, more than %d", pending, verifyMaxMessages)
	}
	out := make(map[string]uint64)
	for read := uint64(0); read < pending && len(out) < len(want); {
		batch, err := cons.Fetch(int(min(verifyBatch, pending-read)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("reading: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			id := m.Headers().Get(HeaderMsgID)
			if _, ok := want[id]; !ok {
				continue
			}
			if md, err := m.Metadata(); err == nil {
				out[id] = md.Sequence.Stream
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("reading: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read %d of %d messages, then nothing", read, pending)
		}
		read += uint64(n)
	}
	return out, nil
}
