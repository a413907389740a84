package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Usage errors are found before any broker is contacted (the broker address
// here has nobody listening) and exit with status 2.
func TestUsageErrors(t *testing.T) {
	base := []string{"-brokers", "127.0.0.1:1", "-group", "g", "-topic", "t"}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no group":             {[]string{"-brokers", "127.0.0.1:1", "-topic", "t"}, "-group and -topic are required"},
		"two targets":          {append(base, "-to-earliest", "-to-latest"), "at most one of"},
		"bad datetime":         {append(base, "-to-datetime", "yesterday"), "RFC 3339"},
		"bad offsets":          {append(base, "-to-offset", "0:5"), "want partition=offset"},
		"negative offset":      {append(base, "-to-offset", "0=-1"), "bad offset"},
		"duplicate partition":  {append(base, "-to-offset", "0=1,0=2"), "given twice"},
		"partitions no reset":  {append(base, "-partitions", "0"), "-partitions needs"},
		"partitions to-offset": {append(base, "-to-offset", "0=1", "-partitions", "0"), "-partitions needs"},
		"bad partitions":       {append(base, "-to-latest", "-partitions", "0,x"), "not a partition number"},
		"dry run no reset":     {append(base, "-dry-run"), "need a reset"},
		"force no reset":       {append(base, "-force"), "need a reset"},
		"stray argument":       {append(base, "-to-latest", "now"), "unexpected arguments"},
		"unknown flag":         {append(base, "-to-yesterday"), "flag provided but not defined"},
		"help":                 {[]string{"-h"}, "(default $KAFKA_BROKERS)\n"}, // and not a second default
	} {
		t.Setenv("KAFKA_BROKERS", "127.0.0.1:2")
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		if code != exitUsage {
			t.Errorf("%s: exit %d, want %d (stderr %q)", name, code, exitUsage, errOut.String())
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%s: stderr %q does not say %q", name, errOut.String(), tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%s: printed %q to stdout", name, out.String())
		}
	}
}

func TestParseOffsets(t *testing.T) {
	got, err := parseOffsets("0=1200, 3=0")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != 1200 || got[3] != 0 {
		t.Fatalf("got %v", got)
	}
}
