package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// jsErrSubjectOverlap is nats-server's JSStreamSubjectOverlapErr.
const jsErrSubjectOverlap jetstream.ErrorCode = 10065

// jsErrStorageResources is nats-server's JSStorageResourcesExceededErr
// ("insufficient storage resources available").
const jsErrStorageResources jetstream.ErrorCode = 10047

// EnsureStream creates the stream of cfg, or updates an existing one so that
// the fields mdbridge manages (subjects, storage, replicas, duplicate window,
// max age, max bytes, discard) match cfg, leaving other fields an operator
// may have set untouched. It is idempotent: with a matching stream it sends
// no update.
//
// It returns ErrStreamConflict (wrapped, naming both streams and what to do)
// when the subjects overlap another stream, or when the server refuses the
// update (e.g. a storage type change), and ErrNoStream when JetStream is not
// enabled.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return ensureStream(ctx, js, cfg.withDefaults())
}

// ensureStream is EnsureStream for a cfg already validated and with
// defaults (the publisher's own: validated once, in NewJetStream).
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	want := jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "mdbridge normalized market data",
	}
	applyManaged(&want, cfg)

	s, err := js.Stream(ctx, cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = js.CreateStream(ctx, want)
		if err != nil {
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				// Created concurrently by another replica: converge on it.
				return ensureStream(ctx, js, cfg)
			}
			return nil, streamError(ctx, js, cfg, "create", err)
		}
		return s, nil
	case err != nil:
		return nil, streamError(ctx, js, cfg, "look up", err)
	}
	have := s.CachedInfo().Config
	next := have
	applyManaged(&next, cfg)
	if managedEqual(have, next) {
		return s, nil
	}
	s, err = js.UpdateStream(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("%w (existing stream %q has storage=%s replicas=%d subjects=%v; configured storage=%s replicas=%d subjects=%v)",
			streamError(ctx, js, cfg, "update", err), cfg.Stream, have.Storage, have.Replicas, have.Subjects,
			next.Storage, next.Replicas, next.Subjects)
	}
	return s, nil
}

// applyManaged sets the fields mdbridge owns on sc.
func applyManaged(sc *jetstream.StreamConfig, cfg Config) {
	sc.Subjects = []string{cfg.streamSubject()}
	sc.Storage = cfg.Storage
	sc.Replicas = cfg.Replicas
	sc.Duplicates = cfg.DuplicateWindow
	sc.MaxAge = cfg.MaxAge
	sc.Discard = cfg.Discard
	sc.Retention = jetstream.LimitsPolicy
	if cfg.MaxBytes != 0 {
		// Managed only when configured (-1: unlimited): an operator's
		// limit survives a restart with MaxBytes 0.
		sc.MaxBytes = cfg.MaxBytes
	}
}

func managedEqual(a, b jetstream.StreamConfig) bool {
	norm := func(v int64) int64 {
		if v <= 0 {
			return -1
		}
		return v
	}
	return slices.Equal(a.Subjects, b.Subjects) && a.Storage == b.Storage && a.Replicas == b.Replicas &&
		a.Duplicates == b.Duplicates && a.MaxAge == b.MaxAge && a.Discard == b.Discard &&
		a.Retention == b.Retention && norm(a.MaxBytes) == norm(b.MaxBytes)
}

// streamError explains a failed stream operation.
func streamError(ctx context.Context, js jetstream.JetStream, cfg Config, op string, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrSubjectOverlap {
		others := overlappingStreams(ctx, js, cfg)
		who := "another stream"
		if len(others) > 0 {
			who = "stream(s) " + strings.Join(others, ", ")
		}
		return fmt.Errorf("%w: cannot %s stream %q with subjects %q: they overlap with %s; delete or narrow %s, or configure a different subject prefix for mdbridge",
			ErrStreamConflict, op, cfg.Stream, cfg.streamSubject(), who, who)
	}
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return fmt.Errorf("%w: cannot %s stream %q: JetStream is not enabled on this server/account: %w", ErrNoStream, op, cfg.Stream, err)
	}
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStorageResources && cfg.MaxBytes > 0 {
		return fmt.Errorf("%w: cannot %s stream %q: the server cannot reserve its MaxBytes of %d bytes from its JetStream storage: %w; lower Config.MaxBytes (-1: unlimited, not reserved) or give the server more storage",
			ErrStreamConflict, op, cfg.Stream, cfg.MaxBytes, err)
	}
	if errors.As(err, &apiErr) {
		return fmt.Errorf("%w: cannot %s stream %q: the server refused: %w; change the configuration to match the existing stream, or delete/migrate the stream", ErrStreamConflict, op, cfg.Stream, err)
	}
	return fmt.Errorf("%w: cannot %s stream %q: %w", ErrNoStream, op, cfg.Stream, err)
}

// overlappingStreams lists the streams (other than cfg.Stream) whose subjects
// overlap cfg's subject filter, with their subjects.
func overlappingStreams(ctx context.Context, js jetstream.JetStream, cfg Config) []string {
	var out []string
	lister := js.ListStreams(ctx, jetstream.WithStreamListSubject(cfg.streamSubject()))
	for info := range lister.Info() {
		if info.Config.Name == cfg.Stream {
			continue
		}
		out = append(out, fmt.Sprintf("%q (subjects %v)", info.Config.Name, info.Config.Subjects))
	}
	return out
}
