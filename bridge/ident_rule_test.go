package bridge

import (
	"strings"
	"testing"
)

func TestSanitizeIdent(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"pod-7.cluster.local", "pod-7-cluster-local"},
		{"host_1", "host_1"},
		{"", "mdbridge"},
		{"é.x", "---x"},
		{strings.Repeat("a", 70), strings.Repeat("a", MaxIdentLen)},
	} {
		got := SanitizeIdent(tt.in, "mdbridge")
		if got != tt.want {
			t.Errorf("SanitizeIdent(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if err := ValidateIdent(got); err != nil {
			t.Errorf("SanitizeIdent(%q) = %q is not valid: %v", tt.in, got, err)
		}
	}
	if err := ValidateIdent(HostIdent()); err != nil {
		t.Errorf("HostIdent() = %q: %v", HostIdent(), err)
	}
}
