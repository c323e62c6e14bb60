// Command mdbridge republishes exchange market data into NATS JetStream.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, args []string) int {
	_ = ctx
	fmt.Fprintln(os.Stderr, "mdbridge: not yet wired", args)
	return 2
}
