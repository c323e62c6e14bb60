// Package rest is the REST plumbing shared by the exchange adapters: GET
// requests that first wait out any rate-limit pause, then take their weight
// from a rate limiter, then read the response body under a size limit and
// hand status, headers and body to the venue's check function. A
// *bridge.RateLimitError returned by the check pauses the limiter until its
// Retry-After has passed, so no request of any goroutine sharing the limiter
// is sent during a ban.
//
// A Client is safe for concurrent use; its fields must not change after the
// first request.
package rest
