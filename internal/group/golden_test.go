package group

import (
	"bufio"
	"encoding/json"
	"maps"
	"os"
	"testing"
)

// The golden files hold scenarios with Apache Kafka 4.4.0's answers, recorded
// by the Java oracle (MQ_JAVA_ORACLE=1 go test -run JavaOracle -update-golden),
// so that plain `go test` checks equivalence with Java without a JDK.

func readGolden[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGoldenAssignments(t *testing.T) {
	golden := readGolden[assignGolden](t, assignGoldenFile)
	if want := len(edgeScenarios()) + goldenRandom + goldenChains; len(golden) != want {
		t.Fatalf("%s has %d scenarios, want %d", assignGoldenFile, len(golden), want)
	}
	identical := map[string]int{}
	for i := range golden {
		g := &golden[i]
		for _, assignor := range assignorNames {
			java, ok := g.Java[assignor]
			if !ok {
				t.Fatalf("%s: no answer for %s", g.Name, assignor)
			}
			r := g.request(assignor)
			got := compactAnswer(r.runGo())
			if (java.Error != "") != (got.Error != "") {
				t.Errorf("%s / %s: java error %q, go error %q", g.Name, assignor, java.Error, got.Error)
				continue
			}
			if !maps.Equal(java.Assignments, got.Assignments) {
				t.Errorf("%s / %s:\n java %v\n go   %v", g.Name, assignor, java.Assignments, got.Assignments)
				continue
			}
			identical[assignor]++
		}
	}
	t.Logf("identical to Java: %v", identical)
}

func TestGoldenCodec(t *testing.T) {
	golden := readGolden[codecGolden](t, codecGoldenFile)
	ops := map[string]int{}
	for i := range golden {
		g := &golden[i]
		if d := diffCodec(g.Java, g.runGo()); d != "" {
			t.Errorf("%s %s: %s", g.Op, g.Name, d)
			continue
		}
		ops[g.Op]++
	}
	if len(ops) != 4 {
		t.Fatalf("%s covers operations %v, want all four", codecGoldenFile, ops)
	}
	t.Logf("identical to Java: %v", ops)
}
