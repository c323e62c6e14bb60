package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/publisher"
)

// clientConn connects the operator commands (status, tail, snapshot) to the
// NATS of a running bridge: MDB_NATS_URL and auth variables, or the embedded
// server's default address.
func clientConn(ctx context.Context, url string, stderr io.Writer) (*Config, *nats.Conn, jetstream.JetStream, error) {
	var cfg Config
	if err := envconfig.Process(envPrefix, &cfg); err != nil {
		return nil, nil, nil, fmt.Errorf("configuration: %w", err)
	}
	if url == "" {
		url = cfg.NATSURL
	}
	if url == "" {
		url = "nats://" + cfg.EmbeddedListen
	}
	cc := cfg.connConfig(splitList(url))
	cc.Name = "mdbridge-cli"
	cc.ReconnectBufSize = 1 << 20
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := publisher.Connect(ctx, cc, quiet)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot reach NATS at %s: %w (is mdbridge running? set MDB_NATS_URL or -server)", publisher.RedactURLs(splitList(url)), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return &cfg, nc, js, nil
}
