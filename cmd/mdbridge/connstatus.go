package main

import (
	"github.com/nats-io/nats.go"
)

// connStatus follows the losses and recoveries of a long-running
// command's NATS connection (status -watch, tail) with a status listener
// of its own: the connection's handlers stay the logger's.
type connStatus struct {
	nc *nats.Conn
	ch chan nats.Status
}

func listenConn(nc *nats.Conn) *connStatus {
	return &connStatus{nc: nc, ch: nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CONNECTED)}
}

// C delivers the connection's changes: CONNECTED once it is back after a
// loss, DISCONNECTED or RECONNECTING when it is lost. Not to be read
// after Close.
func (c *connStatus) C() <-chan nats.Status { return c.ch }

// Close removes the listener (and closes C).
func (c *connStatus) Close() { c.nc.RemoveStatusListener(c.ch) }
