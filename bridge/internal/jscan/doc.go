// Package jscan is a small, case-sensitive, validating JSON reader for the
// exchange adapters' hot decode paths.
//
// encoding/json matches object keys to struct fields case-insensitively,
// which is wrong for Binance frames whose keys differ only in case (e/E,
// t/T, m/M, b/B, a/A), and it allocates per field. jscan walks a string in
// place: keys are compared byte for byte and string values are returned as
// substrings of the input (no copies), so a decoder can convert a frame to a
// string once and take every field from it, or read the frame's own memory
// in place and copy only the strings its events keep into an Arena (the
// frame buffer is reused for the next frame; arena chunks never are). Keys
// are compared as written: a key spelled with escapes ("\u0065") does not
// match "e".
//
// Every value the scanner reads or skips is validated against the JSON
// grammar (RFC 8259): strings (escapes, control characters), numbers,
// literals, nesting (at most MaxDepth levels). Invalid input yields ErrSyntax
// (wrapped with the offset); the scanner never panics on any input.
//
// A Scanner is a small value with no shared state; use one per goroutine.
package jscan
