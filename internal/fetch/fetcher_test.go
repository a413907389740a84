package fetch

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// drain reads p until n records came, releasing every chunk, and returns
// their offsets.
func drain(t *testing.T, p *Partition, n int) []int64 {
	t.Helper()
	ctx := testCtx(t)
	var got []int64
	for len(got) < n {
		c, err := p.Next(ctx)
		require.NoError(t, err, "%s[%d] after %d records", p.Topic(), p.ID(), len(got))
		got = append(got, offsetsOf(c.Records)...)
		c.Release()
	}
	return got
}

func assign(t *testing.T, f *Fetcher, topic string, id int32, offset int64) *Partition {
	t.Helper()
	p, err := f.Assign(topic, id, offset)
	require.NoError(t, err)
	return p
}

func TestOneRequestPerBrokerForAllItsPartitions(t *testing.T) {
	fl := newFakeLogs(t, 3)
	fl.createTopic("a", 6) // partitions 0..5 on brokers 0,1,2,0,1,2
	fl.createTopic("b", 3)
	for p := int32(0); p < 6; p++ {
		fl.appendRecords("a", p, 40, 10)
	}
	for p := int32(0); p < 3; p++ {
		fl.appendRecords("b", p, 40, 10)
	}
	f := newTestFetcher(t, fl, Config{})
	var parts []*Partition
	for p := int32(0); p < 6; p++ {
		parts = append(parts, assign(t, f, "a", p, 0))
	}
	for p := int32(0); p < 3; p++ {
		parts = append(parts, assign(t, f, "b", p, OffsetEarliest))
	}
	for _, p := range parts {
		assert.Equal(t, span(0, 40), drain(t, p, 40))
	}

	// Each broker's fetches came on one connection, asked only for the
	// partitions it leads, and (once all were placed) for all of them
	// together.
	require.Eventually(t, func() bool {
		most := map[int32]int{}
		for _, r := range fl.requests() {
			most[r.Broker] = max(most[r.Broker], len(r.Parts))
		}
		return most[0] == 3 && most[1] == 3 && most[2] == 3
	}, 10*time.Second, time.Millisecond, "each broker leads 2 partitions of a and 1 of b: one request asks for all")
	conns := map[int32]map[int]bool{}
	for _, r := range fl.requests() {
		if conns[r.Broker] == nil {
			conns[r.Broker] = map[int]bool{}
		}
		conns[r.Broker][r.Conn] = true
		for _, fp := range r.Parts {
			assert.Equal(t, r.Broker, fp.ID%3, "%s[%d] asked of broker %d", fp.Topic, fp.ID, r.Broker)
		}
	}
	for b := int32(0); b < 3; b++ {
		assert.Len(t, conns[b], 1, "broker %d: fetch connections", b)
	}
}

func TestSlowBrokerDoesNotHoldUpTheOthers(t *testing.T) {
	fl := newFakeLogs(t, 2)
	fl.createTopic("t", 4) // 0, 2 on broker 0; 1, 3 on broker 1
	for p := int32(0); p < 4; p++ {
		fl.appendRecords("t", p, 30, 10)
	}
	release := fl.holdBroker(1)
	defer release()
	f := newTestFetcher(t, fl, Config{})
	var parts []*Partition
	for p := int32(0); p < 4; p++ {
		parts = append(parts, assign(t, f, "t", p, 0))
	}
	// Broker 0's partitions are read to the end, and keep getting new
	// records, while broker 1 does not answer.
	assert.Equal(t, span(0, 30), drain(t, parts[0], 30))
	assert.Equal(t, span(0, 30), drain(t, parts[2], 30))
	fl.appendRecords("t", 0, 10, 10)
	assert.Equal(t, span(30, 40), drain(t, parts[0], 10))
	for _, r := range fl.requests() {
		assert.Equal(t, int32(0), r.Broker, "broker 1 answered nothing yet")
	}
	release()
	assert.Equal(t, span(0, 30), drain(t, parts[1], 30))
	assert.Equal(t, span(0, 30), drain(t, parts[3], 30))
}

func TestLeaderMovesMidStream(t *testing.T) {
	fl := newFakeLogs(t, 2)
	fl.createTopic("t", 2) // 0 on broker 0, 1 on broker 1
	fl.appendRecords("t", 0, 30, 10)
	fl.appendRecords("t", 1, 30, 10)
	f := newTestFetcher(t, fl, Config{})
	p0 := assign(t, f, "t", 0, 0)
	p1 := assign(t, f, "t", 1, 0)
	assert.Equal(t, span(0, 30), drain(t, p0, 30))
	assert.Equal(t, span(0, 30), drain(t, p1, 30))

	fl.cl.SetLeader("t", 0, 1) // epoch 1, now on broker 1
	fl.appendRecords("t", 0, 20, 10)
	fl.appendRecords("t", 1, 20, 10)
	assert.Equal(t, span(30, 50), drain(t, p0, 20), "no gap, no duplicate across the move")
	assert.Equal(t, span(30, 50), drain(t, p1, 20), "the other partition is not disturbed")

	var sawNew bool
	for _, r := range fl.requests() {
		for _, fp := range r.Parts {
			if fp.ID == 0 && r.Broker == 1 {
				sawNew = true
				assert.Equal(t, int32(1), fp.Epoch, "the new leader epoch is sent")
			}
		}
	}
	assert.True(t, sawNew, "partition 0 is fetched from its new leader")
	assert.GreaterOrEqual(t, fl.cl.Count(-1, protocol.Metadata), 2, "the move was looked up")
}

func TestFencedEpochLooksUpTheLeaderAgain(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 1)
	fl.appendRecords("t", 0, 10, 10)
	f := newTestFetcher(t, fl, Config{})
	p := assign(t, f, "t", 0, 0)
	assert.Equal(t, span(0, 10), drain(t, p, 10))
	fl.cl.SetLeader("t", 0, 0) // same broker, new epoch: our epoch is fenced
	fl.appendRecords("t", 0, 10, 10)
	assert.Equal(t, span(10, 20), drain(t, p, 10))
}

func TestOffsetOutOfRangeRestartsAtThePolicy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset int64
		want  []int64
	}{
		{"earliest", OffsetEarliest, span(5, 20)},
		{"latest", OffsetLatest, span(20, 25)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl := newFakeLogs(t, 1)
			fl.createTopic("t", 2)
			fl.appendRecords("t", 0, 20, 5)
			fl.setLog("t", 0, func(l *fakeLog) { // retention removed 0..4
				l.batches, l.starts, l.nexts, l.logStart = l.batches[1:], l.starts[1:], l.nexts[1:], 5
			})
			fl.appendRecords("t", 1, 10, 5)
			f := newTestFetcher(t, fl, Config{Reset: tc.reset})
			p := assign(t, f, "t", 0, 2) // below the log start
			other := assign(t, f, "t", 1, 0)
			assert.Equal(t, span(0, 10), drain(t, other, 10))
			if tc.reset == OffsetLatest {
				require.Eventually(t, func() bool { return fl.cl.Count(-1, protocol.ListOffsets) > 0 }, 10*time.Second, time.Millisecond)
				fl.appendRecords("t", 0, 5, 5)
			}
			assert.Equal(t, tc.want, drain(t, p, len(tc.want)))
		})
	}
}

// A position out of range reaches the consumer as a Restarted chunk at the
// new position, before the records from there: beyond the log's end (a
// truncated log, a seek too far) the position moves backwards, and the
// consumer's commit point must follow.
func TestOffsetOutOfRangeTellsTheRestart(t *testing.T) {
	for _, tc := range []struct {
		name          string
		reset, assign int64
		start         int64
		want          []int64
	}{
		{"beyond the end, earliest", OffsetEarliest, 100, 0, span(0, 20)},
		{"beyond the end, latest", OffsetLatest, 100, 20, span(20, 25)},
		{"below the start, earliest", OffsetEarliest, 2, 5, span(5, 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl := newFakeLogs(t, 1)
			fl.createTopic("t", 1)
			fl.appendRecords("t", 0, 20, 5)
			fl.setLog("t", 0, func(l *fakeLog) { // retention removed 0..4
				if tc.start == 5 {
					l.batches, l.starts, l.nexts, l.logStart = l.batches[1:], l.starts[1:], l.nexts[1:], 5
				}
			})
			f := newTestFetcher(t, fl, Config{Reset: tc.reset})
			p := assign(t, f, "t", 0, tc.assign)
			c, err := p.Next(testCtx(t))
			require.NoError(t, err)
			assert.True(t, c.Restarted, "the first chunk tells the restart")
			assert.Empty(t, c.Records)
			assert.Equal(t, tc.start, c.NextOffset)
			c.Release()
			if tc.reset == OffsetLatest {
				fl.appendRecords("t", 0, 5, 5)
			}
			assert.Equal(t, tc.want, drain(t, p, len(tc.want)))
		})
	}
}

func TestStartOffsetsAreLookedUp(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 2)
	fl.appendRecords("t", 0, 10, 5)
	fl.appendRecords("t", 1, 10, 5)
	f := newTestFetcher(t, fl, Config{})
	early := assign(t, f, "t", 0, OffsetEarliest)
	late := assign(t, f, "t", 1, OffsetLatest)
	assert.Equal(t, span(0, 10), drain(t, early, 10))
	require.Eventually(t, func() bool {
		for _, r := range fl.requests() {
			for _, fp := range r.Parts {
				if fp.ID == 1 {
					return true
				}
			}
		}
		return false
	}, 10*time.Second, time.Millisecond)
	fl.appendRecords("t", 1, 3, 5)
	assert.Equal(t, span(10, 13), drain(t, late, 3))
}

func TestFullBufferIsNotFetched(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 2)
	fl.appendSized("t", 0, 100, 10, 500)
	fl.appendSized("t", 1, 100, 10, 500)
	// Shares of 16 KiB; fetches of 8 KiB (the minimum) get one batch of
	// 10 records of 500 bytes, 6.4 KB decoded: a partition holding one
	// cannot hold another 8 KiB fetch's worth (decoded) within its share.
	f := newTestFetcher(t, fl, Config{BufferBytes: 32 << 10})
	full := assign(t, f, "t", 0, 0)
	flowing := assign(t, f, "t", 1, 0)

	ctx := testCtx(t)
	held, err := full.Next(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, held.Records)
	next := held.NextOffset
	before := len(fl.requests())
	assert.Equal(t, span(0, 100), drain(t, flowing, 100), "the other partition keeps flowing")
	after := fl.requests()[before:]
	require.NotEmpty(t, after)
	for _, r := range after {
		for _, fp := range r.Parts {
			assert.NotEqual(t, int32(0), fp.ID, "a partition with a full buffer is left out of requests")
		}
	}
	assert.Positive(t, f.BufferedBytes())

	held.Release()
	got := drain(t, full, 100-int(next))
	assert.Equal(t, span(next, 100), got, "released, it is fetched again")
}

func TestBatchLargerThanTheFetchSize(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 2)
	fl.appendRecords("t", 0, 10, 10)
	big := newTestBatch(0, 50)
	for i := range big.records {
		big.records[i].value = make([]byte, 1000) // ~50 KB, above the 8 KiB fetch size
	}
	fl.appendBatches("t", 1, big)
	f := newTestFetcher(t, fl, Config{PartitionMaxBytes: 8 << 10})
	small := assign(t, f, "t", 0, 0)
	large := assign(t, f, "t", 1, 0)
	assert.Equal(t, span(0, 10), drain(t, small, 10))
	assert.Equal(t, span(0, 50), drain(t, large, 50), "the whole batch comes, though larger than a fetch")
}

func TestPartitionErrorStopsOnlyThatPartition(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 2)
	fl.appendRecords("t", 0, 10, 5)
	fl.appendRecords("t", 1, 10, 5)
	fl.setLog("t", 0, func(l *fakeLog) { l.errCode = int16(kafka.TopicAuthorizationFailed) })
	f := newTestFetcher(t, fl, Config{})
	denied := assign(t, f, "t", 0, 0)
	ok := assign(t, f, "t", 1, 0)
	_, err := denied.Next(testCtx(t))
	require.ErrorIs(t, err, kafka.TopicAuthorizationFailed)
	assert.Contains(t, err.Error(), "t[0] at offset 0")
	assert.Equal(t, span(0, 10), drain(t, ok, 10))
}

func TestRevokeEndsNext(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 1)
	f := newTestFetcher(t, fl, Config{})
	p := assign(t, f, "t", 0, 0)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Next(testCtx(t))
		errc <- err
	}()
	require.Eventually(t, func() bool { return len(fl.requests()) > 0 || fl.cl.Count(-1, protocol.Fetch) > 0 }, 10*time.Second, time.Millisecond)
	f.Revoke(p)
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, ErrRevoked)
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after Revoke")
	}
	// The partition can be assigned again, from another offset.
	fl.appendRecords("t", 0, 10, 5)
	p = assign(t, f, "t", 0, 4)
	assert.Equal(t, span(4, 10), drain(t, p, 6))

	// Assigned again while assigned: the earlier assignment is revoked.
	again := assign(t, f, "t", 0, 8)
	_, err := p.Next(testCtx(t))
	assert.ErrorIs(t, err, ErrRevoked)
	assert.Equal(t, span(8, 10), drain(t, again, 2))
	f.Close()
	_, err = f.Assign("t", 1, 0)
	assert.ErrorIs(t, err, ErrClosed)
}

func TestTransactionMarkersAdvanceThePosition(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 1)
	committed := newTestBatch(0, 3).txn(7)
	aborted := newTestBatch(4, 2).txn(8)
	fl.appendBatches("t", 0, committed, controlBatch(3, 7, false), aborted, controlBatch(6, 8, true))
	fl.setLog("t", 0, func(l *fakeLog) { l.aborted = []AbortedTxn{{ProducerID: 8, FirstOffset: 4}} })
	f := newTestFetcher(t, fl, Config{Isolation: ReadCommitted})
	p := assign(t, f, "t", 0, 0)
	ctx := testCtx(t)
	var got []int64
	next := int64(0)
	for next < 7 {
		c, err := p.Next(ctx)
		require.NoError(t, err)
		got = append(got, offsetsOf(c.Records)...)
		next = c.NextOffset
		c.Release()
	}
	assert.Equal(t, span(0, 3), got, "committed records only")
	assert.Equal(t, int64(7), next, "past the abort marker: committing it leaves nothing behind")
}

func TestLostResponseIsRetried(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 1)
	fl.appendRecords("t", 0, 20, 5)
	var dropped atomic.Bool
	fl.cl.Handle(protocol.Fetch, func(r *wiretest.Request) wiretest.Response {
		if dropped.CompareAndSwap(false, true) {
			return wiretest.Drop() // read, never answered: the connection breaks
		}
		return fl.fetch(r)
	})
	f := newTestFetcher(t, fl, Config{})
	p := assign(t, f, "t", 0, 0)
	assert.Equal(t, span(0, 20), drain(t, p, 20), "nothing lost, nothing twice")
	assert.True(t, dropped.Load())
	assert.Equal(t, 2, fl.cl.Accepted(0)-1, "the fetch connection was dialed again (plus one control connection)")
}

func TestBusyPartitionIsNotHeldBehindALongPoll(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 2)
	fl.appendSized("t", 0, 200, 10, 500) // 20 batches of ~5 KB: many fetches of 8 KiB
	// Partition 1 stays empty: a request holding only it would wait the
	// whole max wait.
	f := newTestFetcher(t, fl, Config{BufferBytes: 32 << 10, MaxWait: 20 * time.Second})
	busy := assign(t, f, "t", 0, 0)
	assign(t, f, "t", 1, 0)
	assert.Equal(t, span(0, 200), drain(t, busy, 200), "drained within the test's deadline")
	var withBusy int
	for _, r := range fl.requests() {
		has := false
		for _, fp := range r.Parts {
			has = has || fp.ID == 0
		}
		if has {
			withBusy++
			continue
		}
		if withBusy < 20 { // partition 0 still had records to fetch
			assert.Zero(t, r.MaxWait, "the idle partition was polled without waiting while the busy one was processed")
		}
	}
	assert.GreaterOrEqual(t, withBusy, 20)
}

func TestFetchSize(t *testing.T) {
	b := budget{total: 24 << 20, partitionMax: 1 << 20}
	b.partitions.Store(12) // shares of 2 MiB
	assert.Equal(t, int32(1<<20), b.fetchSize(0, 1, 0), "half a share: one fetched while the other is processed")
	assert.Equal(t, int32(1<<20), b.fetchSize(1<<20, 1, 0), "room for one more")
	assert.Zero(t, b.fetchSize(1<<20+1, 1, 0), "a full share is not fetched")
	assert.Equal(t, int32(256<<10), b.fetchSize(0, 4, 0), "compressed 4:1: a quarter of the bytes on the wire")
	assert.Equal(t, int32(3<<20), b.fetchSize(0, 1, 3<<20), "a batch larger than the share is fetched whole")
	assert.Zero(t, b.fetchSize(1, 1, 3<<20), "...when the partition holds nothing, and only then")

	b.partitions.Store(10_000) // shares of 2.4 KiB
	assert.Equal(t, int32(minFetchBytes), b.fetchSize(0, 1, 0), "never below the minimum")
	b.partitions.Store(1)
	assert.Equal(t, int32(1<<20), b.fetchSize(0, 1, 0), "never above the partition max")
}

func TestCompressedOnly(t *testing.T) {
	plain := newTestBatch(0, 3)
	snappy := newTestBatch(3, 3)
	snappy.attrs = Attributes(compress.Snappy)
	assert.False(t, compressedOnly(recordSet(t, plain)))
	assert.True(t, compressedOnly(recordSet(t, snappy)))
	assert.False(t, compressedOnly(recordSet(t, snappy, plain)), "one uncompressed batch is enough")
	set := recordSet(t, snappy, plain)
	cut := len(recordSet(t, snappy)) + 30
	assert.True(t, compressedOnly(set[:cut]), "a partial batch at the end is not decoded, so it does not count")
	assert.True(t, compressedOnly(nil))
}
