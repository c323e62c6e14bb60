package publisher

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// FuzzParseAck checks that parseAck's scanner reads every publish reply
// exactly as encoding/json does: the same stream, sequence and duplicate
// flag when both accept it, and an error of the same kind otherwise. Seeds
// are in testdata/fuzz/FuzzParseAck (the shapes nats-server writes) and
// below (shapes a naive scanner misreads).
func FuzzParseAck(f *testing.F) {
	for _, s := range []string{
		`{"stream":"MD","seq":7,"x":{"duplicate":true}}`,
		`{"stream":"MD","seq":7,"duplicate":true,"duplicate":false}`,
		`{"stream":"MD","seq":7,"Duplicate":true}`,
		`{"stream":"MD","seq":7,"dupl\u0069cate":true}`,
		`{"stream":"a\"duplicate\":true","seq":1}`,
		`{"stream":"MD","seq":18446744073709551616}`,
		`{"stream":"MD","seq":07}`,
		`{"stream":"MD","seq":7.0}`,
		`{"stream":"","seq":7}`,
		`{"stream":"MD","seq":7,"error":null}`,
		` {"stream":"MD","seq":7} `,
		`{"stream":"MD","seq":7}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseAck(&nats.Msg{Data: data})
		if len(data) == 0 {
			if !errors.Is(err, jetstream.ErrInvalidJSAck) {
				t.Fatalf("empty reply: %v", err)
			}
			return
		}
		want, wantErr := parseAckJSON(data)
		if _, ok := scanAck(data); ok && !json.Valid(data) {
			t.Fatalf("%q: scanned, but it is not JSON", data)
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: parseAck error %v, encoding/json error %v", data, err, wantErr)
		}
		if err != nil {
			var a, b *jetstream.APIError
			if errors.Is(err, jetstream.ErrInvalidJSAck) != errors.Is(wantErr, jetstream.ErrInvalidJSAck) ||
				errors.As(err, &a) != errors.As(wantErr, &b) || a != nil && (a.Code != b.Code || a.ErrorCode != b.ErrorCode) {
				t.Fatalf("%q: parseAck error %v, encoding/json error %v", data, err, wantErr)
			}
			return
		}
		if !bytes.Equal(got.stream, want.stream) || got.seq != want.seq || got.dup != want.dup {
			t.Fatalf("%q: parseAck {%s %d %v}, encoding/json {%s %d %v}", data, got.stream, got.seq, got.dup, want.stream, want.seq, want.dup)
		}
	})
}

// BenchmarkParseAck measures reading the two replies nats-server writes
// for every publish: stored, and duplicate.
func BenchmarkParseAck(b *testing.B) {
	for _, c := range []struct{ name, data string }{
		{"stored", `{"stream":"MD","seq":1234567}`},
		{"duplicate", `{"stream":"MD","seq":1234567,"duplicate": true}`},
	} {
		m := &nats.Msg{Data: []byte(c.data)}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := parseAck(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
