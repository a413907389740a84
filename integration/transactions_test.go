package integration

// Transactions: records of committed and aborted transactions, and the
// transaction markers (control batches) between them, written by franz-go's
// transactional producer (on the embedded broker and Kafka) and by the Java
// client (Kafka only, through Interop.java's transactions command). An mq
// consumer with the default JSON codec reads them in both isolation levels:
// read-committed delivers exactly the committed records, read-uncommitted
// every data record; neither hands a marker to a handler nor stops on one,
// and both commit the end offsets (lag 0), past the last marker.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TxnEvent is the value of every transactional record: {"id":n,"txn":t}.
type TxnEvent struct {
	ID  int `json:"id"`
	Txn int `json:"txn"`
}

// txnRecord is one record a transactional producer wrote.
type txnRecord struct {
	Partition int
	Offset    int64
	ID        int
	Committed bool
}

// franzTransactions writes count transactions of per records with franz-go,
// committing the even-numbered ones and aborting the others, as
// Interop.java's transactions command does.
func franzTransactions(t *testing.T, topic string, count, per int) []txnRecord {
	t.Helper()
	ctx := ctxT(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs()...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("mq-test-"+topic), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	require.NoError(t, err)
	defer cl.Close()
	var out []txnRecord
	for tx := 0; tx < count; tx++ {
		commit := tx%2 == 0
		require.NoError(t, cl.BeginTransaction())
		var mu sync.Mutex
		var recs []txnRecord
		for r := 0; r < per; r++ {
			n := tx*per + r
			v, err := json.Marshal(TxnEvent{ID: n, Txn: tx})
			require.NoError(t, err)
			cl.Produce(ctx, &kgo.Record{Key: []byte("txn-" + strconv.Itoa(n)), Value: v}, func(rec *kgo.Record, err error) {
				assert.NoError(t, err)
				mu.Lock()
				recs = append(recs, txnRecord{Partition: int(rec.Partition), Offset: rec.Offset, ID: n, Committed: commit})
				mu.Unlock()
			})
		}
		require.NoError(t, cl.Flush(ctx))
		require.NoError(t, cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)))
		out = append(out, recs...)
	}
	return out
}

// javaTransactions has the Java client write the transactions.
func javaTransactions(t *testing.T, topic string, count, per int) []txnRecord {
	t.Helper()
	out := javaInterop(t, "transactions", bootstrap(), topic, strconv.Itoa(count), strconv.Itoa(per))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, count*per, "one line per record:\n%s", out)
	recs := make([]txnRecord, len(lines))
	for i, line := range lines {
		f := strings.Fields(line)
		require.Len(t, f, 3, "line %q", line)
		p, err := strconv.Atoi(f[0])
		require.NoError(t, err)
		o, err := strconv.ParseInt(f[1], 10, 64)
		require.NoError(t, err)
		recs[i] = txnRecord{Partition: p, Offset: o, ID: i, Committed: f[2] == "C"}
	}
	return recs
}

// consumeTransactional reads topic with an mq JSON consumer at isolation
// level iso until want records came and the group committed every end
// offset, and returns what the handler saw, sorted by ID.
func consumeTransactional(t *testing.T, topic string, iso mq.IsolationLevel, want int) []mq.Message[TxnEvent] {
	t.Helper()
	group := "g-" + topic + "-" + strconv.Itoa(int(iso))
	c, err := mq.NewKafkaConsumer[TxnEvent](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithIsolationLevel(iso))...)
	require.NoError(t, err)
	var mu sync.Mutex
	var got []mq.Message[TxnEvent]
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[TxnEvent]) error {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		return nil
	}))
	r := start(c)
	ctx := ctxT(t)
	lagZero := func() bool { return committedEnds(ctx, group, topic) }
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	ok := assert.Eventually(t, func() bool { return count() >= want && lagZero() }, 30*time.Second, 10*time.Millisecond)
	if !ok {
		committed, _ := cluster.CommittedOffsets(ctx, group, topic)
		ends, _ := cluster.EndOffsets(ctx, topic)
		t.Errorf("handled %d of %d records; committed %v, end offsets %v", count(), want, committed, ends)
	}
	// The broker shows a commit a moment before the consumer records it
	// (after the response): wait for Stats to catch up.
	lagged := func() []mq.PartitionStats {
		var out []mq.PartitionStats
		for _, p := range c.Stats().Partitions {
			if p.Lag != 0 {
				out = append(out, p)
			}
		}
		return out
	}
	assert.Eventually(t, func() bool { return len(lagged()) == 0 }, 10*time.Second, 10*time.Millisecond,
		"lag in Stats: %+v", lagged())
	require.NoError(t, r.stop(t), "the consumer never stops on a transaction marker")
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(got, func(a, b mq.Message[TxnEvent]) int { return a.Value.ID - b.Value.ID })
	return got
}

// committedEnds reports whether group committed the end offset of every
// partition of topic. The end offsets are read each time: a transaction
// coordinator writes the markers after EndTxn returned.
func committedEnds(ctx context.Context, group, topic string) bool {
	ends, err := cluster.EndOffsets(ctx, topic)
	if err != nil {
		return false
	}
	committed, err := cluster.CommittedOffsets(ctx, group, topic)
	if err != nil {
		return false
	}
	for p, end := range ends {
		if committed[p] != end {
			return false
		}
	}
	return true
}

func checkTransactional(t *testing.T, topic string, written []txnRecord) {
	var committed, all []txnRecord
	for _, r := range written {
		all = append(all, r)
		if r.Committed {
			committed = append(committed, r)
		}
	}
	require.NotEmpty(t, committed)
	require.Less(t, len(committed), len(all))
	for _, tc := range []struct {
		name string
		iso  mq.IsolationLevel
		want []txnRecord
	}{
		{"read-committed", mq.ReadCommitted, committed},
		{"read-uncommitted", mq.ReadUncommitted, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := consumeTransactional(t, topic, tc.iso, len(tc.want))
			var wantAt, gotAt []string
			for _, r := range tc.want {
				wantAt = append(wantAt, fmt.Sprintf("%d@%d#%d", r.Partition, r.Offset, r.ID))
			}
			for _, m := range got {
				gotAt = append(gotAt, fmt.Sprintf("%d@%d#%d", m.Partition, m.Offset, m.Value.ID))
			}
			slices.Sort(wantAt)
			slices.Sort(gotAt)
			assert.Equal(t, wantAt, gotAt, "exactly the expected data records, each once; no marker")
		})
	}
}

// The default isolation level is read-committed.
func TestDefaultIsolationIsReadCommitted(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	written := franzTransactions(t, topic, 2, 5)
	c, err := mq.NewKafkaConsumer[TxnEvent](cluster.Addrs(), topic, "g-"+topic, fastConsumer(t)...)
	require.NoError(t, err)
	var mu sync.Mutex
	var ids []int
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[TxnEvent]) error {
		mu.Lock()
		ids = append(ids, m.Value.ID)
		mu.Unlock()
		return nil
	}))
	r := start(c)
	ctx := ctxT(t)
	require.Eventually(t, func() bool { return committedEnds(ctx, "g-"+topic, topic) }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	var want []int
	for _, w := range written {
		if w.Committed {
			want = append(want, w.ID)
		}
	}
	assert.Equal(t, want, ids)
}

func TestTransactionsFromFranzGo(t *testing.T) {
	topic := cluster.NewTopic(t, 3)
	checkTransactional(t, topic, franzTransactions(t, topic, 6, 30))
}

func TestInteropTransactionsFromJavaClient(t *testing.T) {
	requireRealBroker(t)
	requireJava(t)
	topic := cluster.NewTopic(t, 3)
	checkTransactional(t, topic, javaTransactions(t, topic, 6, 30))
}
