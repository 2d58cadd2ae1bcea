package testenv

import "testing"

// TestInCI: CI=true/1 means CI, CI=false/0/empty does not; an unknown value counts as CI.
func TestInCI(t *testing.T) {
	for v, want := range map[string]bool{"": false, "false": false, "0": false, "FALSE": false, " false ": false,
		"true": true, "1": true, "True": true, "yes": true} {
		if got := inCI(v); got != want {
			t.Errorf("CI=%q: InCI %v, want %v", v, got, want)
		}
	}
	t.Setenv("CI", "false")
	if InCI() {
		t.Error("CI=false counts as CI")
	}
}
