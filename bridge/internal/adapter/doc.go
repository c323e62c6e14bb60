// Package adapter holds what the exchange adapters (bridge/binance,
// bridge/bybit) do the same way, so that each adapter keeps only its
// venue's rules (stream names, frames, REST paths, error mapping):
//
//   - Common: the Config fields every adapter has (base URLs, frame and
//     body limits, HTTP client, logger), their defaults and checks;
//   - Core: the venue-independent state of an adapter (exchange id, REST
//     rate limiter and client, symbol table, logger, clock) and what is
//     built on it: topic registration, symbol canonicalization, REST GETs.
//
// A Core is safe for concurrent use once Init has returned; Init itself
// runs once, in the adapter's New.
package adapter
