package publisher

import "log/slog"

// Secret is a credential (password, token, NKey seed) that never appears in
// logs, errors or formatted output: String, GoString, LogValue and
// MarshalText all return "[redacted]" (or "" when empty).
type Secret string

const redacted = "[redacted]"

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue hides the value from log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText hides the value from encoding/json and friends.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret's value for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }
