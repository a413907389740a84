package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as mqbench's worker process.
func TestMain(m *testing.M) {
	if js, ok := workerArg(); ok {
		os.Exit(workerMain(js))
	}
	os.Exit(m.Run())
}

// TestQuick runs the whole benchmark in quick mode on the embedded broker:
// every system and workload must run without error (no timing assertions).
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	var out, log bytes.Buffer
	code := run([]string{"-quick", "-embedded"}, &out, &log)
	t.Logf("log:\n%s", log.String())
	t.Logf("output:\n%s", out.String())
	if code != 0 {
		t.Fatalf("mqbench -quick exited %d", code)
	}
	for _, w := range allWorkloads {
		if !strings.Contains(out.String(), workloadTitle[w]) {
			t.Errorf("table has no row for workload %s", w)
		}
	}
}
