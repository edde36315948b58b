package main

import "testing"

func TestWantsWorkload(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--workload", "load"}, true},
		{[]string{"-workload=read"}, true},
		{[]string{"-mode", "load", "-n", "5"}, false},
	} {
		if got := wantsWorkload(c.args); got != c.want {
			t.Errorf("wantsWorkload(%q) = %v", c.args, got)
		}
	}
}
