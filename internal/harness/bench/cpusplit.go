package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/pprof"
	"time"
)

// labelKey is the pprof label naming the component a goroutine works for.
const labelKey = "component"

// Components (values of labelKey).
const (
	compSim     = "sim"
	compBridge  = "bridge"
	compRaw     = "raw"
	compCeiling = "ceiling"
	compNATS    = "nats"
	compHarness = "harness"
	compRuntime = "runtime" // samples without a label: GC, scheduler, timers
)

// withComponent runs f with the goroutine labelled as component; goroutines
// f starts inherit the label.
func withComponent(ctx context.Context, component string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(labelKey, component), f)
}

// goComponent starts f in a goroutine labelled as component.
func goComponent(ctx context.Context, component string, f func(context.Context)) {
	withComponent(ctx, component, func(ctx context.Context) { go f(ctx) })
}

// cpuSplit is a running CPU profile whose samples are summed per
// component label.
type cpuSplit struct {
	buf bytes.Buffer
	on  bool
}

// startCPUSplit starts the process's CPU profiler; if it cannot (another
// profile is running, e.g. go test -cpuprofile), the split is simply
// unavailable.
func startCPUSplit(enabled bool) *cpuSplit {
	c := &cpuSplit{}
	if enabled {
		c.on = pprof.StartCPUProfile(&c.buf) == nil
	}
	return c
}

// stop ends the profile and returns CPU seconds per component (nil when
// unavailable). The raw profile is copied to w when w is not nil.
func (c *cpuSplit) stop(w io.Writer) (map[string]float64, error) {
	if c == nil || !c.on {
		return nil, nil
	}
	pprof.StopCPUProfile()
	c.on = false
	if w != nil {
		if _, err := w.Write(c.buf.Bytes()); err != nil {
			return nil, err
		}
	}
	ns, err := cpuByLabel(c.buf.Bytes(), labelKey)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(ns))
	for k, v := range ns {
		out[componentName(k)] += time.Duration(v).Seconds()
	}
	return out, nil
}

// errProfile: a CPU profile could not be parsed.
var errProfile = errors.New("bench: malformed CPU profile")

// otherLabels is cpuByLabel's key for samples that carry labels, but not
// the one asked for.
const otherLabels = "\x00other"

// cpuByLabel sums the CPU nanoseconds of a gzipped pprof profile by the
// value of label key ("" for samples without any label, otherLabels for
// samples with other labels only). It reads just the fields
// it needs of profile.proto: Profile.sample_type (1), Profile.sample (2),
// Profile.string_table (6); Sample.value (2) and Sample.label (3);
// Label.key (1) and Label.str (2); ValueType.type (1).
func cpuByLabel(gz []byte, key string) (map[string]int64, error) {
	return valuesByLabel(gz, key, "cpu")
}

// goroutinesByComponent counts the process's goroutines by component
// label, from the goroutine profile.
func goroutinesByComponent() (map[string]int, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 0); err != nil {
		return nil, err
	}
	n, err := valuesByLabel(buf.Bytes(), labelKey, "goroutine")
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(n))
	for k, v := range n {
		out[componentName(k)] += int(v)
	}
	return out, nil
}

// componentName maps a valuesByLabel key to a component.
func componentName(k string) string {
	switch k {
	case "":
		return compRuntime
	case otherLabels:
		// nats-server replaces its goroutines' labels with its own
		// (account, stream); nothing else in the process sets labels.
		return compNATS
	}
	return k
}

// valuesByLabel sums the values of sample type typ of a gzipped pprof
// profile by the value of label key.
func valuesByLabel(gz []byte, key, typ string) (map[string]int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errProfile, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errProfile, err)
	}
	type sample struct {
		values []int64
		labels [][2]int64 // key, str string indexes
	}
	var (
		types   []int64 // sample_type[i].type string index
		samples []sample
		strs    []string
	)
	err = protoFields(raw, func(field int, wire int, v uint64, b []byte) error {
		switch {
		case field == 1 && wire == 2:
			var t int64
			err := protoFields(b, func(f, w int, v uint64, _ []byte) error {
				if f == 1 && w == 0 {
					t = int64(v)
				}
				return nil
			})
			types = append(types, t)
			return err
		case field == 2 && wire == 2:
			var s sample
			err := protoFields(b, func(f, w int, v uint64, b []byte) error {
				switch {
				case f == 2 && w == 0:
					s.values = append(s.values, int64(v))
				case f == 2 && w == 2: // packed
					for len(b) > 0 {
						x, n := uvarint(b)
						if n <= 0 {
							return errProfile
						}
						s.values = append(s.values, int64(x))
						b = b[n:]
					}
				case f == 3 && w == 2:
					var l [2]int64
					err := protoFields(b, func(f, w int, v uint64, _ []byte) error {
						if w == 0 && (f == 1 || f == 2) {
							l[f-1] = int64(v)
						}
						return nil
					})
					if err != nil {
						return err
					}
					s.labels = append(s.labels, l)
				}
				return nil
			})
			samples = append(samples, s)
			return err
		case field == 6 && wire == 2:
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	str := func(i int64) string {
		if i >= 0 && int(i) < len(strs) {
			return strs[i]
		}
		return ""
	}
	vi := -1
	for i, t := range types {
		if str(t) == typ {
			vi = i
		}
	}
	if vi < 0 {
		return nil, fmt.Errorf("%w: no %s sample type", errProfile, typ)
	}
	out := map[string]int64{}
	for _, s := range samples {
		if vi >= len(s.values) {
			continue
		}
		comp := ""
		if len(s.labels) > 0 {
			comp = otherLabels
		}
		for _, l := range s.labels {
			if str(l[0]) == key {
				comp = str(l[1])
			}
		}
		out[comp] += s.values[vi]
	}
	return out, nil
}

// protoFields calls f for each field of a protobuf message: varints with v,
// length-delimited fields with b; fixed-size fields are skipped.
func protoFields(b []byte, f func(field, wire int, v uint64, b []byte) error) error {
	for len(b) > 0 {
		tag, n := uvarint(b)
		if n <= 0 {
			return errProfile
		}
		b = b[n:]
		field, wire := int(tag>>3), int(tag&7)
		switch wire {
		case 0:
			v, n := uvarint(b)
			if n <= 0 {
				return errProfile
			}
			b = b[n:]
			if err := f(field, wire, v, nil); err != nil {
				return err
			}
		case 1:
			if len(b) < 8 {
				return errProfile
			}
			b = b[8:]
		case 2:
			l, n := uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errProfile
			}
			if err := f(field, wire, 0, b[n:n+int(l)]); err != nil {
				return err
			}
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errProfile
			}
			b = b[4:]
		default:
			return errProfile
		}
	}
	return nil
}

// uvarint decodes a protobuf varint; n <= 0 on error.
func uvarint(b []byte) (uint64, int) { return binary.Uvarint(b) }
