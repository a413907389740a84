package fetch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Real-broker fixtures: raw Fetch response bodies from Apache Kafka 4.4.0
// for topics written by Kafka's Java client, and the Java client's listing
// of every record it wrote (testdata/README.md; regenerate with
// testdata/java/capture.sh).

const fixtureDir = "testdata/broker"

type fixture struct {
	Name       string
	File       string
	Version    int16
	Isolation  IsolationLevel
	Partitions []struct {
		Topic       string
		Partition   int32
		FetchOffset int64
	}
	body []byte
	resp *Response
}

// javaRecord is one line of expected.ndjson. encoding/json keeps base64 null
// as a nil slice and "" as an empty one.
type javaRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp int64
	Status    string // committed, aborted, open (transaction), plain
	Key       []byte
	Value     []byte
	Headers   []struct {
		Key   string
		Value []byte
	}
}

func loadFixtures(tb testing.TB) []fixture {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, "fixtures.json"))
	require.NoError(tb, err)
	var fs []fixture
	require.NoError(tb, json.Unmarshal(data, &fs))
	require.NotEmpty(tb, fs)
	for i := range fs {
		f := &fs[i]
		f.body, err = os.ReadFile(filepath.Join(fixtureDir, f.File))
		require.NoError(tb, err)
		f.resp, err = DecodeFetchResponse(f.Version, f.body)
		require.NoError(tb, err, f.Name)
	}
	return fs
}

// loadJavaRecords returns expected.ndjson by "topic/partition", in offset
// order.
func loadJavaRecords(t *testing.T) map[string][]javaRecord {
	f, err := os.Open(filepath.Join(fixtureDir, "expected.ndjson"))
	require.NoError(t, err)
	defer f.Close()
	out := map[string][]javaRecord{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r javaRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		out[k] = append(out[k], r)
	}
	require.NoError(t, sc.Err())
	return out
}

// latestPerKey keeps the records compaction keeps: the last of each key.
func latestPerKey(rs []javaRecord) []javaRecord {
	last := map[string]int64{}
	for _, r := range rs {
		last[string(r.Key)] = r.Offset
	}
	var out []javaRecord
	for _, r := range rs {
		if last[string(r.Key)] == r.Offset {
			out = append(out, r)
		}
	}
	return out
}

func TestBrokerFixtures(t *testing.T) {
	java := loadJavaRecords(t)
	// The comparison below tells null from empty only if the listing has both.
	var nullKey, emptyKey, nullHeader, emptyHeader bool
	for _, r := range java["fx-nulls/0"] {
		nullKey = nullKey || r.Key == nil
		emptyKey = emptyKey || (r.Key != nil && len(r.Key) == 0)
		for _, h := range r.Headers {
			nullHeader = nullHeader || h.Value == nil
			emptyHeader = emptyHeader || (h.Value != nil && len(h.Value) == 0)
		}
	}
	require.True(t, nullKey && emptyKey && nullHeader && emptyHeader)

	for _, f := range loadFixtures(t) {
		t.Run(f.Name, func(t *testing.T) {
			require.NoError(t, f.resp.Err)
			require.Len(t, f.resp.Partitions, len(f.Partitions))
			for i, req := range f.Partitions {
				p := &f.resp.Partitions[i]
				require.Equal(t, req.Topic, p.Topic)
				require.Equal(t, req.Partition, p.Partition)
				require.NoError(t, p.Err)
				checkFixturePartition(t, f, req.FetchOffset, p, java[fmt.Sprintf("%s/%d", p.Topic, p.Partition)])
			}
		})
	}
}

// checkFixturePartition decodes one partition of a fixture and compares it
// with what the Java client wrote.
func checkFixturePartition(t *testing.T, f fixture, fetchOffset int64, p *PartitionResponse, written []javaRecord) {
	t.Helper()
	require.NotEmpty(t, written)
	d, err := DecodeRecords(p, fetchOffset, Options{Isolation: f.Isolation})
	require.NoError(t, err)

	if p.Topic == "fx-compacted" {
		written = latestPerKey(written)
	}
	var want []javaRecord
	for _, r := range written {
		// Records past NextOffset are in the next response: a partial
		// batch, or the next segment (a broker reads one segment per fetch).
		if r.Offset < fetchOffset || r.Offset >= d.NextOffset {
			continue
		}
		if f.Isolation == ReadCommitted && (r.Offset >= p.LastStableOffset || r.Status == "aborted" || r.Status == "open") {
			continue
		}
		want = append(want, r)
	}
	require.NotEmpty(t, want)
	require.Len(t, d.Records, len(want), "%s/%d", p.Topic, p.Partition)
	for i, w := range want {
		got := d.Records[i]
		require.Equal(t, w.Offset, got.Offset)
		requireSameBytes(t, w.Key, got.Key, "key")
		requireSameBytes(t, w.Value, got.Value, "value")
		require.Len(t, got.Headers, len(w.Headers))
		for j, h := range w.Headers {
			require.Equal(t, h.Key, got.Headers[j].Key)
			requireSameBytes(t, h.Value, got.Headers[j].Value, "header "+h.Key)
		}
		// The broker's append time on the LogAppendTime topic (the Java
		// client reports it), the producer's time elsewhere.
		require.Equal(t, time.UnixMilli(w.Timestamp), got.Timestamp, "offset %d", w.Offset)
		if p.Topic == "fx-logappend" {
			require.Equal(t, LogAppendTime, got.TimestampType)
			require.Greater(t, w.Timestamp, int64(1_500_000_000_000), "the broker's time, not the 2001 CreateTime")
		} else {
			require.Equal(t, CreateTime, got.TimestampType)
		}
		require.Equal(t, w.Status != "plain", got.Transactional)
	}

	switch {
	case p.Topic == "fx-compacted":
		// The broker stops at the end of the compacted segment: the roll
		// record Fixtures.java wrote last is in the next one.
		require.Equal(t, written[len(written)-1].Offset, d.NextOffset)
	case d.Truncated:
		require.Greater(t, d.NextOffset, fetchOffset)
		require.Less(t, d.NextOffset, p.HighWatermark)
	case f.Isolation == ReadCommitted:
		require.Equal(t, p.LastStableOffset, d.NextOffset)
	default:
		require.Equal(t, p.HighWatermark, d.NextOffset, "lag 0 after the last batch, markers included")
	}
	if f.Isolation == ReadUncommitted {
		require.Nil(t, p.AbortedTransactions, "the broker sends aborted transactions only to read-committed fetches")
	}

	if p.Topic == "fx-txn" {
		// Fixtures.java's C leaves its transaction open: the last stable
		// offset is its first record, below the high watermark.
		open := -1
		for i, r := range written {
			if r.Status == "open" {
				open = i
				break
			}
		}
		require.Equal(t, written[open].Offset, p.LastStableOffset)
		require.Less(t, p.LastStableOffset, p.HighWatermark)
		if fetchOffset == 0 {
			// Markers: A1 commit, A2 abort, A3 abort, B1 commit, B2
			// commit, A4 abort, A5 commit.
			require.Equal(t, 7, d.ControlBatches)
			if f.Isolation == ReadCommitted {
				require.Len(t, p.AbortedTransactions, 3) // A2, A3, A4
				require.Equal(t, 4, d.AbortedBatches)    // A2, A3 (two batches), A4
			}
		}
	}
	if p.Topic == "fx-compacted" {
		require.Len(t, want, 10) // k7-k9 of the first batch, k0-k4 of the second, 2 tombstones
		// Compaction emptied offsets 0-6 of the first batch, which keeps
		// its base offset and last offset delta.
		b, _, err := DecodeBatch(p.Records, 0)
		require.NoError(t, err)
		require.Equal(t, int64(0), b.BaseOffset)
		require.Equal(t, int64(10), b.NextOffset())
		require.Equal(t, int64(7), b.Records[0].Offset)
	}
}

// The truncated fixture really ends inside a batch, for each partition.
func TestBrokerFixtureTruncated(t *testing.T) {
	for _, f := range loadFixtures(t) {
		if f.Name != "codecs-truncated-v11" {
			continue
		}
		for i := range f.resp.Partitions {
			d, err := DecodeRecords(&f.resp.Partitions[i], 0, Options{})
			require.NoError(t, err)
			require.True(t, d.Truncated)
			require.Equal(t, 1, d.Batches)
			require.Equal(t, int64(10), d.NextOffset) // Fixtures.java writes 10 records per batch
		}
		return
	}
	t.Fatal("no codecs-truncated-v11 fixture")
}

// Each codec fixture partition is compressed with its codec.
func TestBrokerFixtureCodecs(t *testing.T) {
	for _, f := range loadFixtures(t) {
		if f.Name != "codecs-v11" {
			continue
		}
		for i, p := range f.resp.Partitions {
			b, _, err := DecodeBatch(p.Records, 0)
			require.NoError(t, err)
			require.Equal(t, codecByPartition[i], b.Attributes.Compression().String())
		}
		return
	}
	t.Fatal("no codecs-v11 fixture")
}

var codecByPartition = []string{"uncompressed", "gzip", "snappy", "lz4", "zstd"}
