package integration

// Interop with clients no one here wrote, against a real Apache Kafka broker:
// kcat (librdkafka) and Kafka's own Java client (through the small tool in
// testdata/interop/Interop.java, built and run by scripts/interop/*.sh) read
// what mq writes and write what mq reads, byte for byte, for every
// compression codec; keys land on the partitions the Java client picks; and
// Kafka's own group tooling reports the offsets mq commits.
//
// These tests run only against a real broker (KAFKA_BROKERS, for example
// from scripts/kafka/start.sh); on the embedded kfake broker they skip. A
// missing tool (java, javac, kcat) skips them with the reason, unless
// MQ_INTEROP=1 (as in CI), where it fails them.
//
//	eval "$(scripts/kafka/start.sh)"
//	MQ_INTEROP=1 go test -race -count=1 -run 'Interop|RealBroker' -v ./integration/

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envInterop makes missing interop tools a failure instead of a skip.
const envInterop = "MQ_INTEROP"

var allCompressions = []mq.Compression{
	mq.CompressionNone, mq.CompressionGzip, mq.CompressionSnappy, mq.CompressionLz4, mq.CompressionZstd,
}

// ----- environment -----

// requireRealBroker skips the test on the embedded fake broker.
func requireRealBroker(t testing.TB) {
	t.Helper()
	if cluster.Mode() == mqtest.ModeEmbedded {
		t.Skip("needs a real broker (KAFKA_BROKERS)")
	}
}

func interopRequired() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(envInterop))) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

// missingTool fails the test when MQ_INTEROP is set, and skips it otherwise.
func missingTool(t testing.TB, what string) {
	t.Helper()
	if interopRequired() {
		t.Fatalf("%s: required by the interop tests against a real broker (%s is set)", what, envInterop)
	}
	t.Skipf("%s: install it to run this interop test (%s=1 turns this skip into a failure)", what, envInterop)
}

func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missingTool(t, name+" is not on PATH")
	}
	return p
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "scripts", "interop", "java.sh"))
	require.NoError(t, err, "scripts/interop/java.sh not found from %s", root)
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// haveKafkaJars reports whether scripts/kafka/fetch.sh has the jars cached
// (see scripts/kafka/lib.sh for the layout).
func haveKafkaJars(root string) bool {
	dir := filepath.Join(envOr("KAFKA_CACHE_DIR", filepath.Join(root, ".cache", "kafka")), envOr("KAFKA_VERSION", "4.4.0"), "libs")
	m, _ := filepath.Glob(filepath.Join(dir, "kafka-clients-*.jar"))
	return len(m) > 0
}

var javaBuild struct {
	once sync.Once
	err  error
}

// requireJava makes sure the Java interop tool and Kafka's tools can run:
// java, javac, the Kafka jars, and a compiled Interop.java.
func requireJava(t testing.TB) {
	t.Helper()
	requireTool(t, "java")
	requireTool(t, "javac")
	root := repoRoot(t)
	if !haveKafkaJars(root) {
		if _, err := exec.LookPath("mvn"); err != nil {
			missingTool(t, "the Kafka jars are not cached and mvn (which scripts/kafka/fetch.sh needs) is not on PATH")
		}
	}
	javaBuild.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, javaBuild.err = runCmd(ctx, nil, filepath.Join(root, "scripts", "interop", "build.sh"))
	})
	if javaBuild.err != nil {
		t.Fatalf("building the Java interop tool: %v", javaBuild.err)
	}
}

// runCmd runs a command and returns its stdout; the error carries stderr.
func runCmd(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w after %v\nstderr:\n%s", filepath.Base(name),
			strings.Join(shorten(args), " "), err, time.Since(start).Round(time.Millisecond), stderr.String())
	}
	return stdout.Bytes(), nil
}

func shorten(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if len(a) > 60 {
			a = a[:60] + "..."
		}
		out = append(out, strconv.Quote(a))
	}
	if len(out) > 12 {
		out = append(out[:12], fmt.Sprintf("(%d more)", len(out)-12))
	}
	return out
}

func bootstrap() string { return strings.Join(cluster.Addrs(), ",") }

// javaInterop runs testdata/interop/Interop.java with args.
func javaInterop(t testing.TB, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	out, err := runCmd(ctx, nil, filepath.Join(repoRoot(t), "scripts", "interop", "java.sh"), args...)
	require.NoError(t, err)
	t.Logf("java Interop %s: %v", args[0], time.Since(start).Round(time.Millisecond))
	return out
}

// kafkaTool runs one of Kafka's own command-line tools by class name.
func kafkaTool(t testing.TB, class string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	out, err := runCmd(ctx, nil, filepath.Join(repoRoot(t), "scripts", "kafka", "kafka-run-class.sh"), append([]string{class}, args...)...)
	require.NoError(t, err)
	t.Logf("%s: %v", class[strings.LastIndexByte(class, '.')+1:], time.Since(start).Round(time.Millisecond))
	return out
}

// ----- records as the other clients see them -----

// wireHeader and wireRecord describe a record as stored: a nil Key, Value or
// header Value is null, a non-nil empty one is empty.
type wireHeader struct {
	Key   string
	Value []byte
}

type wireRecord struct {
	Partition int
	Offset    int64
	Time      int64 // ms since the epoch; 0 when not checked
	Key       []byte
	Value     []byte
	Headers   []wireHeader
	What      string // where the expectation came from, for messages
}

type partOff struct {
	p int
	o int64
}

func (r wireRecord) at() partOff { return partOff{r.Partition, r.Offset} }

func fromHeaders(hs []mq.Header) []wireHeader {
	out := make([]wireHeader, len(hs))
	for i, h := range hs {
		out[i] = wireHeader{Key: h.Key, Value: h.Value}
	}
	return out
}

func showBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	if len(b) > 48 {
		return fmt.Sprintf("%q...(%d bytes)", b[:48], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func sameBytes(want, got []byte, nullAware bool) bool {
	if nullAware && (want == nil) != (got == nil) {
		return false
	}
	return bytes.Equal(want, got)
}

// diffRecord describes how got differs from want, or returns "". With
// nullAware, null and empty differ.
func diffRecord(want, got wireRecord, nullAware bool) string {
	var d []string
	if !sameBytes(want.Key, got.Key, nullAware) {
		d = append(d, fmt.Sprintf("key %s, want %s", showBytes(got.Key), showBytes(want.Key)))
	}
	if !sameBytes(want.Value, got.Value, nullAware) {
		d = append(d, fmt.Sprintf("value %s, want %s", showBytes(got.Value), showBytes(want.Value)))
	}
	if want.Time != 0 && got.Time != want.Time {
		d = append(d, fmt.Sprintf("timestamp %d, want %d", got.Time, want.Time))
	}
	if len(got.Headers) != len(want.Headers) {
		d = append(d, fmt.Sprintf("%d headers %v, want %d %v", len(got.Headers), got.Headers, len(want.Headers), want.Headers))
	} else {
		for i := range want.Headers {
			w, g := want.Headers[i], got.Headers[i]
			if w.Key != g.Key || !sameBytes(w.Value, g.Value, nullAware) {
				d = append(d, fmt.Sprintf("header %d: %q=%s, want %q=%s", i, g.Key, showBytes(g.Value), w.Key, showBytes(w.Value)))
			}
		}
	}
	return strings.Join(d, "; ")
}

// compareRecords checks that got holds exactly the records of want (by
// partition and offset), each identical.
func compareRecords(t testing.TB, reader string, want []wireRecord, got []wireRecord, nullAware bool) {
	t.Helper()
	byAt := make(map[partOff]wireRecord, len(want))
	for _, w := range want {
		byAt[w.at()] = w
	}
	seen := map[partOff]bool{}
	var problems []string
	for _, g := range got {
		w, ok := byAt[g.at()]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%d@%d: unexpected record key=%s", g.Partition, g.Offset, showBytes(g.Key)))
		case seen[g.at()]:
			problems = append(problems, fmt.Sprintf("%d@%d: read twice", g.Partition, g.Offset))
		default:
			if d := diffRecord(w, g, nullAware); d != "" {
				problems = append(problems, fmt.Sprintf("%d@%d (%s): %s", g.Partition, g.Offset, w.What, d))
			}
		}
		seen[g.at()] = true
	}
	for _, w := range want {
		if !seen[w.at()] {
			problems = append(problems, fmt.Sprintf("%d@%d (%s): not read", w.Partition, w.Offset, w.What))
		}
	}
	if len(problems) > 0 {
		if len(problems) > 25 {
			problems = append(problems[:25], fmt.Sprintf("... and %d more", len(problems)-25))
		}
		t.Errorf("%s read %d records, %d expected; differences:\n  %s", reader, len(got), len(want), strings.Join(problems, "\n  "))
	}
}

// ----- kcat -----

// decodeKcatJSON parses one line of `kcat -J` output without losing bytes.
// kcat (yajl) writes the bytes of keys, values and headers verbatim, valid
// UTF-8 or not, escaping only control bytes (\u00XX), quotes and
// backslashes; encoding/json would turn invalid UTF-8 into U+FFFD. So every
// byte >= 0x80 is first mapped to the code point U+0100+byte (kcat never
// writes those code points: it emits no \u escapes above U+001F) and mapped
// back after decoding.
func decodeKcatJSON(line []byte) (wireRecord, error) {
	buf := make([]byte, 0, len(line)+len(line)/4)
	for _, b := range line {
		if b < 0x80 {
			buf = append(buf, b)
		} else {
			buf = utf8.AppendRune(buf, rune(0x100+int(b)))
		}
	}
	var raw struct {
		Partition int       `json:"partition"`
		Offset    int64     `json:"offset"`
		Ts        int64     `json:"ts"`
		Headers   []*string `json:"headers"` // name, value, name, value...
		Key       *string   `json:"key"`
		Payload   *string   `json:"payload"`
	}
	if err := json.Unmarshal(buf, &raw); err != nil {
		return wireRecord{}, fmt.Errorf("kcat JSON %q: %w", line, err)
	}
	unmap := func(s *string) ([]byte, error) {
		if s == nil {
			return nil, nil
		}
		out := make([]byte, 0, len(*s))
		for _, r := range *s {
			switch {
			case r < 0x80:
				out = append(out, byte(r))
			case r >= 0x180 && r < 0x200:
				out = append(out, byte(r-0x100))
			default:
				return nil, fmt.Errorf("unexpected code point %U in kcat output", r)
			}
		}
		return out, nil
	}
	rec := wireRecord{Partition: raw.Partition, Offset: raw.Offset, Time: raw.Ts}
	var err error
	if rec.Key, err = unmap(raw.Key); err != nil {
		return rec, err
	}
	if rec.Value, err = unmap(raw.Payload); err != nil {
		return rec, err
	}
	if len(raw.Headers)%2 != 0 {
		return rec, fmt.Errorf("kcat headers %v: odd length", raw.Headers)
	}
	for i := 0; i < len(raw.Headers); i += 2 {
		if raw.Headers[i] == nil {
			return rec, errors.New("kcat header with a null name")
		}
		name, err := unmap(raw.Headers[i])
		if err != nil {
			return rec, err
		}
		val, err := unmap(raw.Headers[i+1])
		if err != nil {
			return rec, err
		}
		rec.Headers = append(rec.Headers, wireHeader{Key: string(name), Value: val})
	}
	return rec, nil
}

// kcatReadAll reads the whole topic from the beginning with kcat.
func kcatReadAll(t testing.TB, kcat, topic string, n int) []wireRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	out, err := runCmd(ctx, nil, kcat, "-C", "-b", bootstrap(), "-t", topic, "-o", "beginning", "-e",
		"-c", strconv.Itoa(n), "-J", "-q", "-m", "15", "-X", "check.crcs=true")
	require.NoError(t, err)
	t.Logf("kcat -C: %v", time.Since(start).Round(time.Millisecond))
	var recs []wireRecord
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r, err := decodeKcatJSON(line)
		require.NoError(t, err)
		recs = append(recs, r)
	}
	return recs
}

// ----- Java -----

// javaReadAll reads the whole topic from the beginning with the Java client.
func javaReadAll(t testing.TB, topic string, n int) []wireRecord {
	t.Helper()
	out := javaInterop(t, "consume", bootstrap(), topic, strconv.Itoa(n))
	var recs []wireRecord
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var raw struct {
			Partition int
			Offset    int64
			Timestamp int64
			Key       []byte // base64; null stays nil, "" becomes empty
			Value     []byte
			Headers   []struct {
				Key   string
				Value []byte
			}
		}
		require.NoError(t, json.Unmarshal(line, &raw), "java output %q", line)
		r := wireRecord{Partition: raw.Partition, Offset: raw.Offset, Time: raw.Timestamp, Key: raw.Key, Value: raw.Value}
		for _, h := range raw.Headers {
			r.Headers = append(r.Headers, wireHeader{Key: h.Key, Value: h.Value})
		}
		recs = append(recs, r)
	}
	return recs
}

// javaRecord rebuilds record(codec, i) of Interop.java's produce command.
func javaRecord(codec string, i int) wireRecord {
	r := wireRecord{What: fmt.Sprintf("java %s #%d", codec, i)}
	if i%10 != 9 {
		r.Key = append([]byte(fmt.Sprintf("java-%s-%d", codec, i)), 0x00, 0xff)
	}
	switch i % 10 {
	case 8: // null
	case 7:
		r.Value = []byte{}
	default:
		n := (i * 53) % 700
		v := append([]byte(fmt.Sprintf("jv:%s:%d:", codec, i)), 0x00)
		for j := 0; j < n; j++ {
			v = append(v, byte((i*7+j*13)&0xff))
		}
		r.Value = v
	}
	if i%10 != 6 {
		r.Headers = []wireHeader{
			{"idx", []byte(strconv.Itoa(i))},
			{"codec", []byte(codec)},
			{"bin", []byte{0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, byte(i)}},
			{"empty", []byte{}},
			{"null", nil},
			{"dup", []byte("1")},
			{"dup", []byte("2")},
			{"\u00fcn\u00ef-\u540d", []byte("u")},
		}
	}
	return r
}

// ----- broker-side checks -----

// storedCompression fetches a partition's stored record batches raw and
// returns the compression codecs of their attributes, ORed together (kafka-go
// merges the batches' attributes); with one codec per partition that is the
// codec the batches were written with.
func storedCompression(t testing.TB, topic string, part int) protocol.Attributes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := cluster.Client()
	m, err := c.Transport.RoundTrip(ctx, c.Addr, &fetchAPI.Request{
		ReplicaID:    -1,
		MaxWaitTime:  100,
		MinBytes:     1,
		MaxBytes:     16 << 20,
		SessionID:    -1,
		SessionEpoch: -1,
		Topics: []fetchAPI.RequestTopic{{
			Topic: topic,
			Partitions: []fetchAPI.RequestPartition{{
				Partition:          int32(part),
				CurrentLeaderEpoch: -1,
				FetchOffset:        0,
				LogStartOffset:     -1,
				PartitionMaxBytes:  16 << 20,
			}},
		}},
	})
	require.NoError(t, err)
	res, ok := m.(*fetchAPI.Response)
	require.True(t, ok, "fetch response %T", m)
	require.Len(t, res.Topics, 1)
	require.Len(t, res.Topics[0].Partitions, 1)
	p := res.Topics[0].Partitions[0]
	require.Zero(t, p.ErrorCode, "fetch %s[%d]: %v", topic, part, kafka.Error(p.ErrorCode))
	return p.RecordSet.Attributes & 7
}

// consumeAllBytes runs an mq consumer group over topic until it has seen n
// messages, then stops it and returns them sorted by partition and offset.
func consumeAllBytes(t testing.TB, topic string, n int) []mq.Message[[]byte] {
	t.Helper()
	c, err := mq.NewKafkaConsumer[[]byte](cluster.Addrs(), topic, "g-"+topic,
		fastConsumer(t, mq.WithCodec[[]byte](mq.BytesCodec{}), mq.WithFetchMaxBytes(4<<20))...)
	require.NoError(t, err)
	var mu sync.Mutex
	var got []mq.Message[[]byte]
	require.NoError(t, c.RegisterHandler(mq.HandlerFunc[[]byte](func(_ context.Context, m mq.Message[[]byte]) error {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		return nil
	})))
	r := start(c)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	if !assert.Eventually(t, func() bool { return count() >= n }, 45*time.Second, 10*time.Millisecond) {
		t.Errorf("mq consumer got %d of %d messages of %s", count(), n, topic)
	}
	require.NoError(t, r.stop(t))
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(got, func(a, b mq.Message[[]byte]) int {
		if a.Partition != b.Partition {
			return a.Partition - b.Partition
		}
		return int(a.Offset - b.Offset)
	})
	return got
}

func mqToWire(msgs []mq.Message[[]byte]) []wireRecord {
	out := make([]wireRecord, len(msgs))
	for i, m := range msgs {
		out[i] = wireRecord{Partition: m.Partition, Offset: m.Offset, Time: m.Time.UnixMilli(), Key: m.Key, Value: m.Value, Headers: fromHeaders(m.Headers)}
	}
	return out
}

// pinTo is a balancer that sends everything to one partition.
func pinTo(p int) kafka.Balancer {
	return kafka.BalancerFunc(func(kafka.Message, ...int) int { return p })
}

// mixedBytes returns n deterministic bytes: pseudo-random (incompressible)
// for the first half, a repeating pattern for the rest, so that compression
// has something to do and block framing is exercised.
func mixedBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		if i < n/2 {
			b[i] = byte(rng.Uint32())
		} else {
			b[i] = byte(i % 251)
		}
	}
	return b
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// mqBinaryMessages are the []byte messages mq writes for one codec: null,
// empty and binary keys, values and headers, duplicate and non-ASCII header
// names, and a 300 KiB value.
func mqBinaryMessages(codec mq.Compression, base time.Time) []mq.Message[[]byte] {
	c := codec.String()
	rng := rand.New(rand.NewPCG(uint64(codec)+1, 0x6d71))
	msgs := []mq.Message[[]byte]{
		{Key: nil, Value: append([]byte("mq:"+c+":0:\x00"), allBytes()...), Headers: []mq.Header{
			{Key: "bin", Value: allBytes()},
			{Key: "empty", Value: []byte{}},
			{Key: "null", Value: nil},
			{Key: "dup", Value: []byte("1")},
			{Key: "dup", Value: []byte("2")},
			{Key: "\u00fcn\u00ef-\u540d", Value: []byte("u")},
			{Key: "", Value: []byte("empty name")},
		}},
		{Key: []byte{}, Value: []byte{}}, // empty, not null; no headers
		{Key: []byte{0x00, 0xff, 0x00, 'k'}, Value: nil, Headers: []mq.Header{{Key: "tombstone", Value: []byte("yes")}}},
		{Key: []byte("mq-" + c + "-big"), Value: mixedBytes(rng, 300<<10), Headers: []mq.Header{{Key: "size", Value: []byte("300KiB")}}},
	}
	for i := 4; i < 12; i++ {
		msgs = append(msgs, mq.Message[[]byte]{
			Key:     append([]byte(fmt.Sprintf("mq-%s-%d", c, i)), 0x00, 0xff),
			Value:   append([]byte(fmt.Sprintf("mq:%s:%d:\x00", c, i)), mixedBytes(rng, i*97)...),
			Headers: []mq.Header{{Key: "idx", Value: []byte(strconv.Itoa(i))}, {Key: "codec", Value: []byte(c)}},
		})
	}
	for i := range msgs {
		msgs[i].Time = base.Add(time.Duration(i) * time.Millisecond)
	}
	return msgs
}

// (a) What mq.Producer writes, with every compression codec, is read back
// byte-identical by kcat (librdkafka), by the Java client and by mq's own
// consumer: keys, values and headers, null and empty kept apart,
// timestamps, and CRCs the readers check.
func TestInteropMQProducerReadByKcatAndJava(t *testing.T) {
	requireRealBroker(t)
	kcat := requireTool(t, "kcat")
	requireJava(t)

	topic := cluster.NewTopic(t, len(allCompressions)) // partition i holds codec i
	ctx := ctxT(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var want []wireRecord
	for i, codec := range allCompressions {
		bp, err := mq.NewProducer[[]byte](cluster.Addrs(), topic, mq.WithCodec[[]byte](mq.BytesCodec{}),
			mq.WithCompression(codec), mq.WithBalancer(pinTo(i)))
		require.NoError(t, err)
		msgs := mqBinaryMessages(codec, base)
		res, err := bp.SendMessages(ctx, msgs...)
		require.NoError(t, err, codec.String())
		require.NoError(t, bp.Close())
		for j, m := range msgs {
			require.Equal(t, i, res[j].Partition)
			assert.Equal(t, m.Time.UnixMilli(), res[j].Time.UnixMilli(), "Result.Time is the record timestamp (CreateTime topic)")
			want = append(want, wireRecord{
				Partition: res[j].Partition, Offset: res[j].Offset, Time: m.Time.UnixMilli(),
				Key: m.Key, Value: m.Value, Headers: fromHeaders(m.Headers),
				What: fmt.Sprintf("mq bytes %s #%d", codec, j),
			})
		}

		jp, err := mq.NewProducer[ChatMessage](cluster.Addrs(), topic, mq.WithCompression(codec), mq.WithBalancer(pinTo(i)))
		require.NoError(t, err)
		for j := 0; j < 3; j++ {
			v := ChatMessage{ID: j, ConversationID: "conv-\u540d-" + codec.String(),
				Body: "h\u00e9llo\x00 w\u00f6rld \"q\" <b>&amp; \u2028 \U0001F600 " + strings.Repeat("body ", j*50)}
			hdrs := []mq.Header{{Key: "content-type", Value: []byte("application/json")}}
			tm := base.Add(time.Duration(100+j) * time.Millisecond)
			r, err := jp.SendMessage(ctx, mq.Message[ChatMessage]{Key: []byte(v.ConversationID), Value: v, Headers: hdrs, Time: tm})
			require.NoError(t, err)
			encoded, err := json.Marshal(v)
			require.NoError(t, err)
			want = append(want, wireRecord{
				Partition: r.Partition, Offset: r.Offset, Time: tm.UnixMilli(),
				Key: []byte(v.ConversationID), Value: encoded, Headers: fromHeaders(hdrs),
				What: fmt.Sprintf("mq json %s #%d", codec, j),
			})
		}
		require.NoError(t, jp.Close())
	}

	for i, codec := range allCompressions {
		assert.EqualValues(t, codec, storedCompression(t, topic, i), "batches of %s are stored with that codec", codec)
	}

	t.Run("kcat", func(t *testing.T) {
		got := kcatReadAll(t, kcat, topic, len(want))
		compareRecords(t, "kcat", want, got, true)
	})
	t.Run("java", func(t *testing.T) {
		got := javaReadAll(t, topic, len(want))
		compareRecords(t, "java", want, got, true)
	})
	t.Run("mq", func(t *testing.T) {
		got := consumeAllBytes(t, topic, len(want))
		compareRecords(t, "mq consumer", want, mqToWire(got), true)
		assert.Positive(t, checkTombstones(t, want, got), "mq's records include null values")
	})
}

// kcat -P input: messages end with kcatMsgDelim; a key, when there is one,
// is split off by kcatKeyDelim (no key delimiter: a null key).
const (
	kcatMsgDelim = "|EnD|"
	kcatKeyDelim = "|KeY|"
)

// kcatHeaders are the -H arguments given to every kcat -P run (name=value;
// no '=': a null value), and what they become on the wire.
func kcatHeaders(codec string) ([]string, []wireHeader) {
	bin := "\x01\x7f\x80\xfe\xff=,;" // argv cannot carry NUL bytes
	args := []string{"codec=" + codec, "bin=" + bin, "empty=", "nullh", "dup=1", "dup=2", "\u00fcn\u00ef-\u540d=u"}
	hs := []wireHeader{
		{"codec", []byte(codec)}, {"bin", []byte(bin)}, {"empty", []byte{}}, {"nullh", nil},
		{"dup", []byte("1")}, {"dup", []byte("2")}, {"\u00fcn\u00ef-\u540d", []byte("u")},
	}
	return args, hs
}

// kcatInput builds the kcat -P input for one codec, written to partition
// part, and the records it becomes: null, empty and binary keys and values,
// and a 100 KiB value.
func kcatInput(t testing.TB, codec string, part int) ([]byte, []wireRecord) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(part)+7, 0x6b63))
	_, hs := kcatHeaders(codec)
	var in bytes.Buffer
	var want []wireRecord
	add := func(key, value []byte) {
		for _, d := range []string{kcatMsgDelim, kcatKeyDelim} {
			require.False(t, bytes.Contains(key, []byte(d)) || bytes.Contains(value, []byte(d)), "test data contains a kcat delimiter")
		}
		if key != nil {
			in.Write(key)
			in.WriteString(kcatKeyDelim)
		}
		in.Write(value)
		in.WriteString(kcatMsgDelim)
		want = append(want, wireRecord{Partition: part, Offset: int64(len(want)), Key: key, Value: value, Headers: hs,
			What: fmt.Sprintf("kcat %s #%d", codec, len(want))})
	}
	add(nil, append([]byte("kcat:"+codec+":0:\x00"), allBytes()...)) // null key
	add([]byte{}, []byte{})                                          // empty key and value
	add(append([]byte("kcat-"+codec+"-2"), 0x00, 0xff), mixedBytes(rng, 100<<10))
	for i := 3; i < 10; i++ {
		add(append([]byte(fmt.Sprintf("kcat-%s-%d", codec, i)), 0x00, 0xff),
			append([]byte(fmt.Sprintf("kcat:%s:%d:\x00", codec, i)), mixedBytes(rng, i*61)...))
	}
	return in.Bytes(), want
}

// (b) What kcat and the Java client write, with every compression codec, is
// consumed by mq.KafkaConsumer with keys, values and headers intact, null
// and empty kept apart (null values as tombstones).
func TestInteropForeignProducersReadByMQConsumer(t *testing.T) {
	requireRealBroker(t)
	kcat := requireTool(t, "kcat")
	requireJava(t)

	t.Run("kcat", func(t *testing.T) {
		topic := cluster.NewTopic(t, len(allCompressions)) // partition i holds codec i
		var want []wireRecord
		for i, codec := range allCompressions {
			in, w := kcatInput(t, codec.String(), i)
			want = append(want, w...)
			hargs, _ := kcatHeaders(codec.String())
			args := []string{"-P", "-b", bootstrap(), "-t", topic, "-p", strconv.Itoa(i),
				"-X", "compression.codec=" + codec.String(), "-D", kcatMsgDelim, "-K", kcatKeyDelim, "-q", "-m", "15"}
			for _, h := range hargs {
				args = append(args, "-H", h)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			_, err := runCmd(ctx, in, kcat, args...)
			cancel()
			require.NoError(t, err)
		}
		for i, codec := range allCompressions {
			assert.EqualValues(t, codec, storedCompression(t, topic, i), "kcat stored %s batches", codec)
		}
		got := consumeAllBytes(t, topic, len(want))
		compareRecords(t, "mq consumer (kcat-written)", want, mqToWire(got), true)
		checkTombstones(t, want, got)
	})

	t.Run("java", func(t *testing.T) {
		const perCodec = 20
		topic := cluster.NewTopic(t, 3)
		names := make([]string, len(allCompressions))
		for i, c := range allCompressions {
			names[i] = c.String()
		}
		out := javaInterop(t, "produce", bootstrap(), topic, strings.Join(names, ","), strconv.Itoa(perCodec))
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		require.Len(t, lines, perCodec*len(names), "one line per record:\n%s", out)
		all := []int{0, 1, 2}
		var want []wireRecord
		for k, line := range lines {
			codec, i := names[k/perCodec], k%perCodec
			f := strings.Fields(line)
			require.Len(t, f, 3, "line %q", line)
			p, err1 := strconv.Atoi(f[0])
			o, err2 := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, errors.Join(err1, err2), "line %q", line)
			w := javaRecord(codec, i)
			w.Partition, w.Offset = p, o
			if w.Key == nil {
				require.Equal(t, "null", f[2], "record %s", w.What)
			} else {
				require.Equal(t, hex.EncodeToString(w.Key), f[2], "record %s: the Go and Java record formulas disagree", w.What)
				// The Java client's partition for a key is the one mq computes.
				assert.Equal(t, kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: w.Key}, all...), p, "partition of %s", w.What)
			}
			want = append(want, w)
		}
		got := consumeAllBytes(t, topic, len(want))
		compareRecords(t, "mq consumer (java-written)", want, mqToWire(got), true)
		assert.Positive(t, checkTombstones(t, want, got), "the Java records include null values")
	})
}

// checkTombstones checks that exactly the null values reach mq handlers as
// tombstones (nil Raw), and empty values as empty ones. It returns the
// number of null values checked.
func checkTombstones(t testing.TB, want []wireRecord, got []mq.Message[[]byte]) int {
	t.Helper()
	byAt := map[partOff]mq.Message[[]byte]{}
	for _, m := range got {
		byAt[partOff{m.Partition, m.Offset}] = m
	}
	tombstones := 0
	for _, w := range want {
		m, ok := byAt[w.at()]
		if !ok {
			continue
		}
		assert.Equal(t, w.Value == nil, m.Tombstone, "%d@%d (%s): Tombstone", w.Partition, w.Offset, w.What)
		assert.Equal(t, w.Value == nil, m.Raw == nil, "%d@%d (%s): Raw nil", w.Partition, w.Offset, w.What)
		if w.Value == nil {
			tombstones++
		}
	}
	return tombstones
}

// partitionKeys returns ~200 keys: ASCII, multi-byte UTF-8, binary with
// every length modulo 4 (murmur2's tail cases), and the empty key.
func partitionKeys() [][]byte {
	var keys [][]byte
	for i := 0; i < 150; i++ {
		keys = append(keys, []byte("user-"+strconv.Itoa(i)))
	}
	for i := 0; i < 10; i++ {
		keys = append(keys, []byte(fmt.Sprintf("\u043a\u043b\u044e\u0447-%d", i)), []byte(fmt.Sprintf("\u952e-%d", i)), []byte(fmt.Sprintf("\U0001F642-%d", i)))
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for n := 1; n <= 19; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		keys = append(keys, b)
	}
	return append(keys, []byte{})
}

// (c) For the same keys, mq's default balancer picks the partitions the Java
// client's default partitioner picks.
func TestInteropKeyPartitioningMatchesJavaClient(t *testing.T) {
	requireRealBroker(t)
	requireJava(t)
	const parts = 7
	topic := cluster.NewTopic(t, parts)
	keys := partitionKeys()
	require.GreaterOrEqual(t, len(keys), 200)

	p, err := mq.NewProducer[[]byte](cluster.Addrs(), topic, mq.WithCodec[[]byte](mq.BytesCodec{}))
	require.NoError(t, err)
	defer p.Close()
	msgs := make([]mq.Message[[]byte], len(keys))
	args := []string{"partition", bootstrap(), topic}
	for i, k := range keys {
		msgs[i] = mq.Message[[]byte]{Key: k, Value: []byte("mq")}
		args = append(args, "hex:"+hex.EncodeToString(k))
	}
	res, err := p.SendMessages(ctxT(t), msgs...)
	require.NoError(t, err)

	out := javaInterop(t, args...)
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	require.Len(t, lines, len(keys))
	var mismatches []string
	used := map[int]int{}
	for i, line := range lines {
		kh, ps, ok := strings.Cut(line, " ")
		require.True(t, ok, "line %q", line)
		require.Equal(t, hex.EncodeToString(keys[i]), kh, "line %d", i)
		jp, err := strconv.Atoi(ps)
		require.NoError(t, err, "line %q", line)
		used[jp]++
		if jp != res[i].Partition {
			mismatches = append(mismatches, fmt.Sprintf("key %q: java %d, mq %d", keys[i], jp, res[i].Partition))
		}
	}
	assert.Empty(t, mismatches, "%d of %d keys land on different partitions", len(mismatches), len(keys))
	assert.Len(t, used, parts, "the keys cover every partition")
}

// groupRow is one partition line of kafka-consumer-groups --describe.
type groupRow struct {
	Topic                      string
	Partition                  int
	Current, LogEnd, Lag       int64 // -1 for "-"
	ConsumerID, Host, ClientID string
}

// parseGroupDescribe parses ConsumerGroupCommand --describe output.
func parseGroupDescribe(t testing.TB, out []byte) []groupRow {
	t.Helper()
	var rows []groupRow
	var cols map[string]int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "GROUP" {
			cols = map[string]int{}
			for i, name := range f {
				cols[name] = i
			}
			continue
		}
		if cols == nil || len(f) != len(cols) {
			continue
		}
		num := func(name string) int64 {
			s := f[cols[name]]
			if s == "-" {
				return -1
			}
			n, err := strconv.ParseInt(s, 10, 64)
			require.NoError(t, err, "%s in %q", name, sc.Text())
			return n
		}
		for _, c := range []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"} {
			_, ok := cols[c]
			require.True(t, ok, "column %s missing in:\n%s", c, out)
		}
		rows = append(rows, groupRow{
			Topic: f[cols["TOPIC"]], Partition: int(num("PARTITION")),
			Current: num("CURRENT-OFFSET"), LogEnd: num("LOG-END-OFFSET"), Lag: num("LAG"),
			ConsumerID: f[cols["CONSUMER-ID"]], Host: f[cols["HOST"]], ClientID: f[cols["CLIENT-ID"]],
		})
	}
	require.NotNil(t, cols, "no GROUP header in:\n%s", out)
	slices.SortFunc(rows, func(a, b groupRow) int { return a.Partition - b.Partition })
	return rows
}

// (d) The offsets mq.KafkaConsumer commits are what Kafka's own group tool
// reports: current offset = log end offset, lag 0, on every partition, with
// the mq member owning them.
func TestInteropGroupToolSeesCommittedOffsets(t *testing.T) {
	requireRealBroker(t)
	requireJava(t)
	const n, parts = 300, 3
	topic := cluster.NewTopic(t, parts)
	produceChat(t, newProducer(t, topic), 0, n)
	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	require.EqualValues(t, n, sum(end))

	group := "g-" + topic
	const clientID = "mq-interop-group"
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithClientID(clientID))...)
	require.NoError(t, err)
	rec := newRecorder()
	require.NoError(t, c.RegisterHandler(rec))
	r := start(c)
	require.Eventually(t, func() bool { return rec.unique() >= n }, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
		return err == nil && assert.ObjectsAreEqual(end, committed)
	}, 15*time.Second, 50*time.Millisecond, "mq commits the end offsets while running")

	out := kafkaTool(t, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
		"--bootstrap-server", bootstrap(), "--describe", "--group", group)
	require.NoError(t, r.stop(t))
	rows := parseGroupDescribe(t, out)
	require.Len(t, rows, parts, "one row per partition:\n%s", out)
	for _, row := range rows {
		assert.Equal(t, topic, row.Topic)
		assert.Equal(t, end[row.Partition], row.Current, "CURRENT-OFFSET of partition %d", row.Partition)
		assert.Equal(t, end[row.Partition], row.LogEnd, "LOG-END-OFFSET of partition %d", row.Partition)
		assert.Zero(t, row.Lag, "LAG of partition %d", row.Partition)
		assert.NotEqual(t, "-", row.ConsumerID, "partition %d has an owner", row.Partition)
		assert.Equal(t, clientID, row.ClientID, "partition %d owned by the mq member", row.Partition)
	}
	// Stopping commits nothing backwards.
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, end, committed)
}
