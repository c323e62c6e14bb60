// Package adaptertest holds the test helpers the exchange adapters'
// tests (bridge/binance, bridge/bybit) share: a scripted REST endpoint and
// transports, the REST error-table runner, decoder checks (events,
// control frames, malformed frames, fuzzing, benchmarks) and simulator
// setup. Only test files import it.
//
// The helpers are safe for concurrent use where a test needs it (FakeREST,
// CountingTransport); the rest run on the test's goroutine.
package adaptertest
