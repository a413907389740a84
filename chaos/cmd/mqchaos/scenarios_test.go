package main

import (
	"slices"
	"testing"
)

func ids(defs []scenarioDef) []int {
	var out []int
	for _, d := range defs {
		out = append(out, d.id)
	}
	return out
}

func TestParseScenarios(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"", []int{1, 2, 3, 4, 5, 6, 7}},
		{"single", []int{1, 2, 3, 4, 5, 6, 7}},
		{"cluster", []int{8, 9, 10, 11, 12}},
		{"all", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"cluster-kill,1", []int{1, 8}},
		{"12, cluster, 9", []int{8, 9, 10, 11, 12}},
	} {
		defs, err := parseScenarios(tc.in)
		if err != nil {
			t.Fatalf("parseScenarios(%q): %v", tc.in, err)
		}
		if got := ids(defs); !slices.Equal(got, tc.want) {
			t.Errorf("parseScenarios(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if _, err := parseScenarios("cluster,13"); err == nil {
		t.Error("parseScenarios accepted scenario 13")
	}
}
