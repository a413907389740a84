package mqs3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

// brokers returns KAFKA_BROKERS, skipping the test when it is unset.
func brokers(t testing.TB) []string {
	t.Helper()
	b := os.Getenv("KAFKA_BROKERS")
	if b == "" {
		t.Skip("KAFKA_BROKERS is not set: start a broker with scripts/kafka/start.sh to run this test")
	}
	return strings.Split(b, ",")
}

// envInt returns the integer in environment variable name, or def.
func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	return n
}

// admin is a kafka-go client for topic administration and offsets.
type admin struct {
	t  testing.TB
	c  *kafka.Client
	tr *kafka.Transport
}

func newAdmin(t testing.TB, addrs []string) *admin {
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &admin{t: t, c: &kafka.Client{Addr: kafka.TCP(addrs...), Transport: tr, Timeout: 30 * time.Second}, tr: tr}
}

func (a *admin) createTopic(topic string, partitions int) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A topic being deleted answers TOPIC_ALREADY_EXISTS for a while.
	// Retention off: testMessages are stamped in 2025, so the broker's
	// retention check (every 5 min, 7 days by default) would delete every
	// record mid-test, and the consumer would find its committed offsets
	// out of range (seen in CI: TestBackupSurvivesSIGKILL stored nothing new).
	require.Eventually(a.t, func() bool {
		res, err := a.c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
			{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
				ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "-1"}}}}})
		return err == nil && res.Errors[topic] == nil
	}, time.Minute, 200*time.Millisecond, "create topic %s", topic)
	a.waitPartitions(topic, partitions)
}

func (a *admin) waitPartitions(topic string, partitions int) {
	a.t.Helper()
	require.Eventually(a.t, func() bool {
		res, err := a.c.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil || len(res.Topics) != 1 || res.Topics[0].Error != nil || len(res.Topics[0].Partitions) != partitions {
			return false
		}
		for _, p := range res.Topics[0].Partitions {
			if p.Leader.Host == "" {
				return false
			}
		}
		return true
	}, time.Minute, 50*time.Millisecond, "topic %s ready", topic)
}

func (a *admin) deleteTopic(topic string) {
	a.t.Helper()
	res, err := a.c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	require.NoError(a.t, err)
	require.NoError(a.t, res.Errors[topic])
	require.Eventually(a.t, func() bool {
		res, err := a.c.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
		return err == nil && len(res.Topics) == 1 && errors.Is(res.Topics[0].Error, kafka.UnknownTopicOrPartition)
	}, time.Minute, 100*time.Millisecond, "topic %s deleted", topic)
}

// endOffsets returns the end offset of each partition.
func (a *admin) endOffsets(topic string, partitions int) map[int]int64 {
	a.t.Helper()
	req := make([]kafka.OffsetRequest, partitions)
	for p := range req {
		req[p] = kafka.LastOffsetOf(p)
	}
	res, err := a.c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	require.NoError(a.t, err)
	out := make(map[int]int64)
	for _, po := range res.Topics[topic] {
		require.NoError(a.t, po.Error)
		out[po.Partition] = po.LastOffset
	}
	return out
}

// committed returns the group's committed offset of each partition (-1:
// none).
func (a *admin) committed(group, topic string, partitions int) map[int]int64 {
	a.t.Helper()
	ps := make([]int, partitions)
	for p := range ps {
		ps[p] = p
	}
	var out map[int]int64
	require.Eventually(a.t, func() bool { // the coordinator may be loading
		res, err := a.c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
		if err != nil || res.Error != nil {
			return false
		}
		out = make(map[int]int64)
		for _, p := range res.Topics[topic] {
			if p.Error != nil {
				return false
			}
			out[p.Partition] = p.CommittedOffset
		}
		return true
	}, 30*time.Second, 100*time.Millisecond)
	return out
}

// readAll reads every record of each partition of topic, up to its end
// offset, in offset order.
func readAll(t testing.TB, addrs []string, topic string, partitions int, ends map[int]int64) map[int][]kafka.Message {
	t.Helper()
	out := make(map[int][]kafka.Message)
	for p := range partitions {
		if ends[p] == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: addrs, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		for {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err, "partition %d after %d records", p, len(out[p]))
			out[p] = append(out[p], m)
			if m.Offset >= ends[p]-1 {
				break
			}
		}
		cancel()
		require.NoError(t, r.Close())
	}
	return out
}

// sameRecord reports how a and b differ in key, value, headers and
// timestamp ("" when they do not).
func sameRecord(a, b kafka.Message) string {
	switch {
	case !bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil):
		return fmt.Sprintf("key %q (nil %v) vs %q (nil %v)", a.Key, a.Key == nil, b.Key, b.Key == nil)
	case !bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil):
		return fmt.Sprintf("value %q (nil %v) vs %q (nil %v)", a.Value, a.Value == nil, b.Value, b.Value == nil)
	case !a.Time.Equal(b.Time):
		return fmt.Sprintf("time %v vs %v", a.Time, b.Time)
	case len(a.Headers) != len(b.Headers):
		return fmt.Sprintf("%d vs %d headers", len(a.Headers), len(b.Headers))
	}
	for i := range a.Headers {
		ha, hb := a.Headers[i], b.Headers[i]
		if ha.Key != hb.Key || !bytes.Equal(ha.Value, hb.Value) || (ha.Value == nil) != (hb.Value == nil) {
			return fmt.Sprintf("header %d: %q=%q vs %q=%q", i, ha.Key, ha.Value, hb.Key, hb.Value)
		}
	}
	return ""
}

// testMessages returns n messages of about size value bytes: keys from a
// small set (some nil), a few empty and null values, zero to two headers
// (one with a null value), and distinct timestamps.
func testMessages(n, size int) []mq.Message[[]byte] {
	base := time.UnixMilli(1_760_000_000_000)
	msgs := make([]mq.Message[[]byte], n)
	for i := range msgs {
		m := mq.Message[[]byte]{Time: base.Add(time.Duration(i) * time.Millisecond)}
		if i%101 != 0 {
			m.Key = []byte(fmt.Sprintf("key-%d", i%997))
		}
		switch {
		case i%503 == 7:
			m.Value = []byte{}
		case i%509 == 11:
			m.Value, m.Tombstone = nil, true
		default:
			v := bytes.Repeat([]byte{byte('a' + i%26)}, size)
			copy(v, fmt.Sprintf("message %d|", i))
			m.Value = v
		}
		switch i % 3 {
		case 1:
			m.Headers = []mq.Header{{Key: "trace", Value: []byte(fmt.Sprint(i))}}
		case 2:
			m.Headers = []mq.Header{{Key: "a", Value: []byte("x")}, {Key: "null", Value: nil}}
		}
		msgs[i] = m
	}
	return msgs
}

// produce sends msgs to topic (keyed partitioning, acks=all).
func produce(t testing.TB, addrs []string, topic string, msgs []mq.Message[[]byte]) {
	t.Helper()
	require.NoError(t, produceErr(addrs, topic, msgs))
}

func produceErr(addrs []string, topic string, msgs []mq.Message[[]byte]) error {
	p, err := mq.NewProducer[[]byte](addrs, topic, mq.WithCodec[[]byte](mq.BytesCodec{}), mq.WithBatchTimeout(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer p.Close()
	for len(msgs) > 0 {
		n := min(len(msgs), 2000)
		if _, err := p.SendMessages(context.Background(), msgs[:n]...); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// uniqueName returns a topic or group name unique to this run.
func uniqueName(kind string) string {
	return fmt.Sprintf("mqs3-%s-%d", kind, time.Now().UnixNano())
}
