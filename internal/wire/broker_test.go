package wire_test

// Tests against a real Kafka broker. They run in CI's JVM tier:
//
//	KAFKA_BROKERS=127.0.0.1:9092 go test -race -run TestBroker ./internal/wire/
//
// and skip without KAFKA_BROKERS. The secured-broker tests (broker_secure_test.go)
// start their own broker and run with MQ_SECURE_TESTS=1.

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/createtopics"
	"github.com/segmentio/kafka-go/protocol/deletetopics"
	"github.com/segmentio/kafka-go/protocol/fetch"
	"github.com/segmentio/kafka-go/protocol/heartbeat"
	"github.com/segmentio/kafka-go/protocol/leavegroup"
	"github.com/segmentio/kafka-go/protocol/produce"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func brokers(t *testing.T) []string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv("KAFKA_BROKERS"))
	if v == "" {
		t.Skip("needs a real broker: set KAFKA_BROKERS (CI's JVM tier does)")
	}
	return strings.Split(v, ",")
}

// createTopic creates a topic through any broker and deletes it when the
// test ends.
func createTopic(t *testing.T, c *wire.Client, partitions int) string {
	t.Helper()
	name := fmt.Sprintf("wire-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	conn, err := c.Any(ctxT(t))
	require.NoError(t, err)
	res, err := conn.RoundTrip(ctxT(t), &createtopics.Request{
		Topics:    []createtopics.RequestTopic{{Name: name, NumPartitions: int32(partitions), ReplicationFactor: 1}},
		TimeoutMs: 10000,
	})
	require.NoError(t, err)
	require.Zero(t, res.(*createtopics.Response).Topics[0].ErrorCode, "creating %s", name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := c.Any(ctx); err == nil {
			_, _ = conn.RoundTrip(ctx, &deletetopics.Request{TopicNames: []string{name}, TimeoutMs: 10000})
		}
	})
	// Wait until the topic has a leader everywhere metadata is asked.
	require.Eventually(t, func() bool {
		md, err := c.Metadata(ctxT(t), []string{name})
		if err != nil || md.Topics[name].Err != nil {
			return false
		}
		for _, p := range md.Topics[name].Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
	return name
}

func TestBrokerMetadataAndVersions(t *testing.T) {
	bs := brokers(t)
	pool := newPool(t, &wire.Dialer{ClientID: "mq-wire-test"})
	c := wire.NewClient(pool, bs)
	topic := createTopic(t, c, 3)

	md, err := c.Metadata(ctxT(t), []string{topic, "wire-no-such-topic"})
	require.NoError(t, err)
	require.NotEmpty(t, md.Brokers)
	require.ErrorIs(t, md.Topics["wire-no-such-topic"].Err, kafka.UnknownTopicOrPartition)
	parts := md.Topics[topic].Partitions
	require.Len(t, parts, 3)
	for _, p := range parts {
		addr, ok := c.BrokerAddr(p.Leader)
		require.True(t, ok, "leader %d of partition %d is a known broker", p.Leader, p.ID)
		conn, err := pool.Conn(ctxT(t), addr, wire.PurposeControl)
		require.NoError(t, err)
		v, _ := conn.Version(protocol.Metadata)
		if v >= 7 {
			assert.GreaterOrEqual(t, p.LeaderEpoch, int32(0), "partition %d", p.ID)
		}
		for _, k := range []protocol.ApiKey{protocol.Produce, protocol.Fetch, protocol.Metadata, protocol.FindCoordinator,
			protocol.JoinGroup, protocol.Heartbeat, protocol.InitProducerId} {
			v, ok := conn.Version(k)
			assert.True(t, ok, "%s", k)
			t.Logf("%s: v%d (kafka-go up to v%d)", k, v, k.MaxVersion())
		}
	}

	id, addr, err := c.FindCoordinator(ctxT(t), "wire-test-group", wire.CoordinatorGroup)
	require.NoError(t, err)
	assert.Contains(t, md.Brokers, id)
	assert.Equal(t, md.Brokers[id].Addr, addr)
}

// Pipelined produce requests on one connection land in the order sent: the
// base offsets of twenty one-record requests, all in flight at once, are
// 0..19.
func TestBrokerPipelinedProduceAndRawFetch(t *testing.T) {
	bs := brokers(t)
	pool := newPool(t, &wire.Dialer{ClientID: "mq-wire-test"})
	c := wire.NewClient(pool, bs)
	topic := createTopic(t, c, 1)
	md, err := c.Metadata(ctxT(t), []string{topic})
	require.NoError(t, err)
	leader := md.Brokers[md.Topics[topic].Partitions[0].Leader].Addr
	conn, err := pool.Conn(ctxT(t), leader, wire.PurposeProduce)
	require.NoError(t, err)

	const n = 20
	pending := make([]*wire.Pending, n)
	for i := range pending {
		p, err := conn.Send(ctxT(t), &produce.Request{Acks: -1, Timeout: 10000, Topics: []produce.RequestTopic{{
			Topic: topic,
			Partitions: []produce.RequestPartition{{Partition: 0, RecordSet: protocol.RecordSet{
				Version: 2,
				Records: protocol.NewRecordReader(protocol.Record{Value: protocol.NewBytes([]byte(fmt.Sprint(i)))}),
			}}},
		}}})
		require.NoError(t, err)
		pending[i] = p
	}
	for i, p := range pending {
		res, err := p.Wait(ctxT(t))
		require.NoError(t, err)
		part := res.(*produce.Response).Topics[0].Partitions[0]
		require.Zero(t, part.ErrorCode, "request %d", i)
		assert.Equal(t, int64(i), part.BaseOffset, "request %d", i)
	}

	// acks=0: no response, and the connection goes on.
	p, err := conn.Send(ctxT(t), &produce.Request{Acks: 0, Timeout: 10000, Topics: []produce.RequestTopic{{
		Topic: topic,
		Partitions: []produce.RequestPartition{{Partition: 0, RecordSet: protocol.RecordSet{
			Version: 2, Records: protocol.NewRecordReader(protocol.Record{Value: protocol.NewBytes([]byte("acks0"))}),
		}}},
	}}})
	require.NoError(t, err)
	res, err := p.Wait(ctxT(t))
	require.NoError(t, err)
	require.Nil(t, res)

	fconn, err := pool.Conn(ctxT(t), leader, wire.PurposeFetch)
	require.NoError(t, err)
	fetchReq := func() *fetch.Request {
		return &fetch.Request{ReplicaID: -1, MaxWaitTime: 500, MinBytes: 1, MaxBytes: 1 << 20, SessionEpoch: -1,
			Topics: []fetch.RequestTopic{{Topic: topic, Partitions: []fetch.RequestPartition{{
				Partition: 0, CurrentLeaderEpoch: -1, FetchOffset: 0, LogStartOffset: -1, PartitionMaxBytes: 1 << 20,
			}}}}}
	}
	var records int
	require.Eventually(t, func() bool {
		res, err := fconn.RoundTrip(ctxT(t), fetchReq())
		require.NoError(t, err)
		part := res.(*fetch.Response).Topics[0].Partitions[0]
		require.Zero(t, part.ErrorCode)
		records = 0
		for {
			r, err := part.RecordSet.Records.ReadRecord()
			if err != nil {
				break
			}
			records++
			_ = r
		}
		return records == n+1
	}, 30*time.Second, 50*time.Millisecond)

	// The raw body of the same fetch: Fetch v7..v11 bodies start with
	// ThrottleTimeMs int32, ErrorCode int16, SessionID int32, then the topic
	// array (int32 count, int16-length name).
	p, err = fconn.SendRaw(ctxT(t), fetchReq())
	require.NoError(t, err)
	res, err = p.Wait(ctxT(t))
	require.NoError(t, err)
	raw := res.(*wire.RawResponse)
	require.GreaterOrEqual(t, raw.Version, int16(7))
	body := raw.Body
	require.Greater(t, len(body), 16+len(topic))
	assert.Zero(t, binary.BigEndian.Uint16(body[4:6]), "error code")
	assert.Equal(t, uint32(1), binary.BigEndian.Uint32(body[10:14]), "one topic")
	nameLen := int(binary.BigEndian.Uint16(body[14:16]))
	assert.Equal(t, topic, string(body[16:16+nameLen]))
}

// Heartbeat responses are ThrottleTimeMs int32 (v1+), ErrorCode int16 in the
// Kafka protocol; kafka-go's protocol/heartbeat.Response declares ErrorCode
// first, so its decoding of v1+ loses the error code. SendRaw lets the group
// engine decode the real layout; this test pins both facts on a real broker.
func TestBrokerHeartbeatLayout(t *testing.T) {
	bs := brokers(t)
	pool := newPool(t, &wire.Dialer{})
	c := wire.NewClient(pool, bs)
	group := fmt.Sprintf("wire-hb-%d", time.Now().UnixNano())
	_, addr, err := c.FindCoordinator(ctxT(t), group, wire.CoordinatorGroup)
	require.NoError(t, err)
	conn, err := pool.Conn(ctxT(t), addr, wire.PurposeGroup)
	require.NoError(t, err)
	v, ok := conn.Version(protocol.Heartbeat)
	require.True(t, ok)
	require.GreaterOrEqual(t, v, int16(1))

	req := func() *heartbeat.Request {
		return &heartbeat.Request{GroupID: group, GenerationID: 1, MemberID: "nobody"}
	}
	p, err := conn.SendRaw(ctxT(t), req())
	require.NoError(t, err)
	res, err := p.Wait(ctxT(t))
	require.NoError(t, err)
	body := res.(*wire.RawResponse).Body
	require.GreaterOrEqual(t, len(body), 6)
	code := int16(binary.BigEndian.Uint16(body[4:6]))
	require.NotZero(t, code, "a heartbeat of an unknown member fails")
	t.Logf("Heartbeat v%d of an unknown member: error %d (%v)", v, code, kafka.Error(code))

	typed, err := conn.RoundTrip(ctxT(t), req())
	require.NoError(t, err)
	t.Logf("kafka-go's decoding of the same response: ErrorCode %d, ThrottleTimeMs %d",
		typed.(*heartbeat.Response).ErrorCode, typed.(*heartbeat.Response).ThrottleTimeMs)
	if v >= 1 {
		assert.Zero(t, typed.(*heartbeat.Response).ErrorCode,
			"kafka-go reads the throttle time's high bytes as the error code: if this fails, kafka-go was fixed")
	}

	// LeaveGroup has the same layout (and kafka-go the same field order).
	lv, ok := conn.Version(protocol.LeaveGroup)
	require.True(t, ok)
	leave := func() *leavegroup.Request {
		return &leavegroup.Request{GroupID: group, MemberID: "nobody", Members: []leavegroup.RequestMember{{MemberID: "nobody"}}}
	}
	p, err = conn.SendRaw(ctxT(t), leave())
	require.NoError(t, err)
	res, err = p.Wait(ctxT(t))
	require.NoError(t, err)
	body = res.(*wire.RawResponse).Body
	t.Logf("LeaveGroup v%d raw body: % x", lv, body)
	typedLeave, err := conn.RoundTrip(ctxT(t), leave())
	require.NoError(t, err)
	t.Logf("kafka-go's decoding: %+v", typedLeave)
}

func TestBrokerPoolPurposes(t *testing.T) {
	bs := brokers(t)
	pool := newPool(t, &wire.Dialer{})
	seen := map[*wire.Conn]bool{}
	for _, purpose := range []wire.Purpose{wire.PurposeProduce, wire.PurposeFetch, wire.PurposeGroup, wire.PurposeControl} {
		c, err := pool.Conn(ctxT(t), bs[0], purpose)
		require.NoError(t, err)
		again, err := pool.Conn(ctxT(t), bs[0], purpose)
		require.NoError(t, err)
		require.Same(t, c, again)
		seen[c] = true
	}
	assert.Len(t, seen, 4)
}
