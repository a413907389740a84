package group

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// The Java oracle: testdata/java/AssignorOracle.java runs Apache Kafka's own
// ConsumerProtocol and assignors (kafka-clients of the Kafka distribution
// cached by scripts/kafka/fetch.sh) on the same inputs as the Go code.
//
//	MQ_JAVA_ORACLE=1 KAFKA_CACHE_DIR=... go test -run JavaOracle ./internal/group/
//
// With MQ_JAVA_ORACLE=1 a missing JDK or jar fails the tests. Without it they
// skip, and the golden files (Java's answers recorded by
// -update-golden) still check equivalence: see golden_test.go.
// MQ_JAVA_ORACLE_CASES sets the number of random scenarios (default 2000),
// MQ_JAVA_ORACLE_SEED the seed (default 1).

var updateGolden = flag.Bool("update-golden", false, "with MQ_JAVA_ORACLE=1, rewrite testdata/golden from the Java oracle's answers")

const (
	assignGoldenFile = "testdata/golden/assign.golden"
	codecGoldenFile  = "testdata/golden/codec.golden"
	// Scenarios recorded in the golden file besides the edge cases.
	goldenRandom, goldenChains = 120, 40
)

// oracleClasses returns a directory to compile the oracle into, or skips
// the test when the oracle is not enabled.
func oracleClasses(t *testing.T) string {
	t.Helper()
	if os.Getenv("MQ_JAVA_ORACLE") != "1" {
		t.Skip("the Java oracle runs with MQ_JAVA_ORACLE=1 (needs a JDK 17+ and the Kafka jars of scripts/kafka/fetch.sh)")
	}
	return t.TempDir()
}

// runOracle sends the requests to the Java oracle and returns its answers,
// one per request, unmarshalled into fresh values of out's element type.
func runOracle[Resp any](t *testing.T, classes string, requests []any) []Resp {
	t.Helper()
	var in bytes.Buffer
	for _, r := range requests {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(line)
		in.WriteByte('\n')
	}
	cmd := exec.Command(filepath.Join("testdata", "java", "oracle.sh"))
	cmd.Env = append(os.Environ(), "ORACLE_CLASSES_DIR="+classes)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java oracle: %v\n%s", err, stderr.String())
	}
	var answers []Resp
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r Resp
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("java oracle answer %q: %v", sc.Text(), err)
		}
		answers = append(answers, r)
	}
	if len(answers) != len(requests) {
		t.Fatalf("java oracle answered %d of %d requests\n%s", len(answers), len(requests), stderr.String())
	}
	return answers
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// oracleScenarios returns the edge cases, random scenarios and rebalance
// chains, in the order the golden file takes its first ones from.
func oracleScenarios(t *testing.T, random, chains int) []scenario {
	seed := uint64(envInt(t, "MQ_JAVA_ORACLE_SEED", 1))
	rng := rand.New(rand.NewPCG(seed, 0x6d71))
	out := edgeScenarios()
	for i := range out {
		out[i].golden = true
	}
	for i := range random {
		s := randomScenario(rng, "random-"+strconv.Itoa(i))
		s.golden = i < goldenRandom
		out = append(out, s)
	}
	rng = rand.New(rand.NewPCG(seed, 0xc4a1)) // chains do not depend on the number of random scenarios
	for i := range chains {
		s := chainScenario(rng, "chain-"+strconv.Itoa(i))
		s.golden = i < goldenChains
		out = append(out, s)
	}
	// Large groups (up to 100 members, 10 topics of 200 partitions): not
	// in the golden file, which they would make large.
	rng = rand.New(rand.NewPCG(seed, 0x1a46e))
	for i := range random / 100 {
		out = append(out, randomScenarioSized(rng, "large-"+strconv.Itoa(i), 100, 10, 200))
		out = append(out, chainScenarioSized(rng, "large-chain-"+strconv.Itoa(i), 100, 10, 200))
	}
	return out
}

func TestJavaOracleAssignors(t *testing.T) {
	classes := oracleClasses(t)
	random := max(envInt(t, "MQ_JAVA_ORACLE_CASES", 2000), goldenRandom)
	chains := max(random/4, goldenChains)
	scenarios := oracleScenarios(t, random, chains)

	var requests []assignRequest
	for _, s := range scenarios {
		rs, err := s.requests()
		if err != nil {
			t.Fatal(err)
		}
		requests = append(requests, rs...)
	}
	anyRequests := make([]any, len(requests))
	for i := range requests {
		anyRequests[i] = &requests[i]
	}
	answers := runOracle[assignResponse](t, classes, anyRequests)

	matched := map[string]int{}
	total := map[string]int{}
	javaErrors, failures := 0, 0
	var golden []assignGolden
	for i := range requests {
		r := &requests[i]
		total[r.Assignor]++
		if answers[i].Error != "" {
			javaErrors++
			t.Logf("java: %s / %s: %s", r.Name, r.Assignor, answers[i].Error)
		}
		if d := diffAssign(answers[i], r.runGo()); d != "" {
			failures++
			if failures <= 10 {
				t.Errorf("%s / %s: %s", r.Name, r.Assignor, d)
			}
		} else {
			matched[r.Assignor]++
		}
		if s := scenarios[i/len(assignorNames)]; s.golden {
			if r.Assignor == assignorNames[0] {
				golden = append(golden, assignGolden{Name: r.Name, Members: r.Members, Topics: r.Topics, Racks: r.Racks, Java: map[string]goldenAnswer{}})
			}
			golden[len(golden)-1].Java[r.Assignor] = compactAnswer(answers[i])
		}
	}
	for _, a := range assignorNames {
		t.Logf("%-18s %d of %d scenarios identical to Java (%d edge, %d random, %d chains, %d large)",
			a, matched[a], total[a], len(edgeScenarios()), random, chains, 2*(random/100))
	}
	t.Logf("java raised an exception in %d requests (go returned an error in the same ones)", javaErrors)
	if failures > 0 {
		t.Fatalf("%d of %d assignments differ from Java's", failures, len(requests))
	}
	if *updateGolden {
		writeGolden(t, assignGoldenFile, golden)
	}
}

func TestJavaOracleCodec(t *testing.T) {
	classes := oracleClasses(t)
	rng := rand.New(rand.NewPCG(uint64(envInt(t, "MQ_JAVA_ORACLE_SEED", 1)), 0xc0dec))
	cases := codecCases(rng, max(envInt(t, "MQ_JAVA_ORACLE_CASES", 2000)/4, 100))
	anyRequests := make([]any, len(cases))
	for i := range cases {
		anyRequests[i] = &cases[i]
	}
	answers := runOracle[codecResponse](t, classes, anyRequests)
	failures, javaErrors := 0, 0
	var golden []codecGolden
	for i := range cases {
		c := &cases[i]
		if answers[i].Error != "" {
			javaErrors++
		}
		if d := diffCodec(answers[i], c.runGo()); d != "" {
			failures++
			if failures <= 10 {
				t.Errorf("%s %s: %s", c.Op, c.Name, d)
			}
		}
		if i < 600 {
			golden = append(golden, codecGolden{codecRequest: *c, Java: answers[i]})
		}
	}
	t.Logf("%d of %d codec operations identical to Java (%d rejected by both)", len(cases)-failures, len(cases), javaErrors)
	if failures > 0 {
		t.Fatalf("%d of %d codec operations differ from Java's", failures, len(cases))
	}
	if *updateGolden {
		writeGolden(t, codecGoldenFile, golden)
	}
}

func writeGolden[T any](t *testing.T, path string, lines []T) {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d entries, %d bytes)", path, len(lines), buf.Len())
}
