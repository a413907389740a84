package mqtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// readMaxWait is the fetch MaxWait of ReadAll's readers. It bounds how long
// closing a reader takes.
const readMaxWait = 100 * time.Millisecond

func (c *Cluster) checkOpen() error {
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}

// CreateTopic creates topic with the given number of partitions (the
// default partition count, see [WithDefaultPartitions], if zero or fewer)
// and replication factor 1, then waits until metadata shows the topic with
// a leader for every partition, on every broker, for at most 30 seconds.
// In [ModeExternal] the replication factor and min.insync.replicas come from
// the [EnvReplicationFactor] and [EnvMinInsyncReplicas] environment variables
// when they are set.
//
// CreateTopic is idempotent: a topic that already exists with the same
// partition count is not an error. One that exists with a different count
// is.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	if topic == "" {
		return errors.New("mqtest: CreateTopic: empty topic name")
	}
	if partitions <= 0 {
		partitions = c.defaultPartitions
	}
	tc := kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}
	if c.mode == ModeExternal {
		rf, minISR, err := topicReplication()
		if err != nil {
			return err
		}
		tc.ReplicationFactor = rf
		if minISR > 0 {
			tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(minISR)}}
		}
	}
	resp, err := c.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}})
	if err != nil {
		return fmt.Errorf("mqtest: creating topic %q: %w", topic, err)
	}
	terr := resp.Errors[topic]
	if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
		return fmt.Errorf("mqtest: creating topic %q: %w", topic, terr)
	}

	ctx, cancel := context.WithTimeout(ctx, topicReadyTimeout)
	defer cancel()
	if err := c.awaitTopic(ctx, topic, partitions); err != nil {
		return err
	}
	if err := c.awaitTopicOnEveryBroker(ctx, topic); err != nil {
		return err
	}
	// The helper client's metadata cache must know the topic too, or
	// Produce and EndOffsets would not find its partition leaders.
	_, err = c.partitions(ctx, topic)
	return err
}

// awaitTopic polls fresh metadata until topic has exactly want partitions,
// each with a leader.
func (c *Cluster) awaitTopic(ctx context.Context, topic string, want int) error {
	var last string
	for backoff := 5 * time.Millisecond; ; backoff = min(2*backoff, 200*time.Millisecond) {
		md, err := c.freshMetadata(ctx, []string{topic})
		switch {
		case err != nil:
			last = err.Error()
		default:
			t, ok := findTopic(md, topic)
			switch {
			case !ok:
				last = "topic not in metadata"
			case topicReady(t) && len(t.Partitions) != want:
				return fmt.Errorf("mqtest: topic %q exists with %d partitions, want %d", topic, len(t.Partitions), want)
			case topicReady(t):
				return nil
			default:
				last = describeNotReady(t)
			}
		}
		if err := sleep(ctx, backoff); err != nil {
			return fmt.Errorf("mqtest: topic %q not ready (%s): %w", topic, last, err)
		}
	}
}

// awaitTopicOnEveryBroker waits until every broker of a multi-broker
// cluster answers metadata for topic with a leader for each partition. The
// brokers learn of a new topic from the controller one by one: for some
// tens of milliseconds after one of them shows it, another can still answer
// UNKNOWN_TOPIC_OR_PARTITION, and a consumer or producer that asks that one
// backs off (kafka-go's reader for up to a second).
func (c *Cluster) awaitTopicOnEveryBroker(ctx context.Context, topic string) error {
	md, err := c.freshMetadata(ctx, []string{topic})
	if err != nil {
		return fmt.Errorf("mqtest: metadata for topic %q: %w", topic, err)
	}
	if len(md.Brokers) < 2 {
		return nil
	}
	for _, b := range md.Brokers {
		addr := net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
		for backoff := 5 * time.Millisecond; ; backoff = min(2*backoff, 200*time.Millisecond) {
			last := brokerShowsTopic(ctx, addr, topic)
			if last == "" {
				break
			}
			if err := sleep(ctx, backoff); err != nil {
				return fmt.Errorf("mqtest: topic %q not ready on broker %d (%s): %s: %w", topic, b.ID, addr, last, err)
			}
		}
	}
	return nil
}

// brokerShowsTopic asks the broker at addr itself (a connection of its own,
// not a client that may pick another broker) for topic's metadata. It
// returns "" when every partition has a leader, else what is missing.
func brokerShowsTopic(ctx context.Context, addr, topic string) string {
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	conn, err := (&kafka.Dialer{ClientID: "mqtest"}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	deadline, _ := dctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err.Error()
	}
	// The topic exists (the controller created it), so the
	// auto-creation flag of kafka-go's metadata request creates nothing.
	parts, err := conn.ReadPartitions(topic)
	switch {
	case err != nil:
		return err.Error()
	case len(parts) == 0:
		return "no partitions"
	}
	for _, p := range parts {
		if p.Error != nil {
			return fmt.Sprintf("partition %d: %v", p.ID, p.Error)
		}
		if p.Leader.Host == "" {
			return fmt.Sprintf("partition %d has no leader", p.ID)
		}
	}
	return ""
}

// partitions returns topic's partition IDs as the helper client's metadata
// cache sees them, waiting for the cache to catch up with a topic that
// exists on the broker. A topic the broker does not know is an error
// wrapping [kafka.UnknownTopicOrPartition]; this check matters because
// fetching from a missing topic hangs with kfake.
func (c *Cluster) partitions(ctx context.Context, topic string) ([]int, error) {
	if topic == "" {
		return nil, errors.New("mqtest: empty topic name")
	}
	ctx, cancel := context.WithTimeout(ctx, topicReadyTimeout)
	defer cancel()
	checked := false
	var last string
	for {
		md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			last = err.Error()
		} else if t, ok := findTopic(md, topic); ok && topicReady(t) {
			ids := make([]int, len(t.Partitions))
			for i, p := range t.Partitions {
				ids[i] = p.ID
			}
			slices.Sort(ids)
			return ids, nil
		} else if ok {
			last = describeNotReady(t)
		}
		if !checked {
			// The cache may lag behind the broker; ask the broker
			// directly whether the topic exists at all.
			fmd, err := c.freshMetadata(ctx, []string{topic})
			if err != nil {
				return nil, fmt.Errorf("mqtest: metadata for topic %q: %w", topic, err)
			}
			ft, ok := findTopic(fmd, topic)
			if !ok || errors.Is(ft.Error, kafka.UnknownTopicOrPartition) {
				return nil, fmt.Errorf("mqtest: topic %q does not exist: %w", topic, kafka.UnknownTopicOrPartition)
			}
			checked = true
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return nil, fmt.Errorf("mqtest: topic %q not ready in metadata (%s): %w", topic, last, err)
		}
	}
}

// freshMetadata asks the broker for metadata directly. kafka.Client.Metadata
// answers from the transport's cache, so this uses a throw-away transport
// whose first metadata request is a real one, restricted to topics (nil: all
// topics). kafka-go sends AllowAutoTopicCreation=false, so this never
// creates a topic.
func (c *Cluster) freshMetadata(ctx context.Context, topics []string) (*kafka.MetadataResponse, error) {
	t := newTransport(topics)
	// kafka-go bounds the connection handshake by DialTimeout alone, not by
	// ctx, so a broker that accepts but never answers would keep a
	// goroutine alive after we return. Keep it within ctx's deadline.
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left > 0 && left < t.DialTimeout {
			t.DialTimeout = left
		}
	}
	defer t.CloseIdleConnections()
	cl := &kafka.Client{Addr: c.client.Addr, Timeout: requestTimeout, Transport: t}
	return cl.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
}

func findTopic(md *kafka.MetadataResponse, topic string) (kafka.Topic, bool) {
	for _, t := range md.Topics {
		if t.Name == topic {
			return t, true
		}
	}
	return kafka.Topic{}, false
}

func topicReady(t kafka.Topic) bool {
	if t.Error != nil || len(t.Partitions) == 0 {
		return false
	}
	for _, p := range t.Partitions {
		if p.Error != nil || p.Leader.Host == "" {
			return false
		}
	}
	return true
}

func describeNotReady(t kafka.Topic) string {
	if t.Error != nil {
		return t.Error.Error()
	}
	for _, p := range t.Partitions {
		if p.Error != nil {
			return fmt.Sprintf("partition %d: %v", p.ID, p.Error)
		}
		if p.Leader.Host == "" {
			return fmt.Sprintf("partition %d has no leader", p.ID)
		}
	}
	return "no partitions"
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DeleteTopic deletes topic. Deleting a topic that does not exist is not an
// error. Real brokers delete asynchronously, so the topic may linger in
// metadata briefly.
func (c *Cluster) DeleteTopic(ctx context.Context, topic string) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	resp, err := c.client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("mqtest: deleting topic %q: %w", topic, err)
	}
	if terr := resp.Errors[topic]; terr != nil && !errors.Is(terr, kafka.UnknownTopicOrPartition) {
		return fmt.Errorf("mqtest: deleting topic %q: %w", topic, terr)
	}
	return nil
}

// EndOffsets returns the high watermark (the offset the next record will
// get) of every partition of topic, keyed by partition. A topic that does
// not exist is an error wrapping [kafka.UnknownTopicOrPartition].
func (c *Cluster) EndOffsets(ctx context.Context, topic string) (map[int]int64, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	ids, err := c.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, len(ids))
	for i, id := range ids {
		reqs[i] = kafka.LastOffsetOf(id)
	}
	var out map[int]int64
	// A topic created a moment ago may not have its leaders everywhere yet
	// (NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE): retried, as Produce
	// does.
	if err := retryTemporary(ctx, func() (err error) {
		out, err = c.endOffsets(ctx, topic, reqs)
		return err
	}); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("mqtest: end offsets of %q: no answer for partition %d", topic, id)
		}
	}
	return out, nil
}

// endOffsets sends one ListOffsets request for reqs.
func (c *Cluster) endOffsets(ctx context.Context, topic string, reqs []kafka.OffsetRequest) (map[int]int64, error) {
	resp, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: reqs},
	})
	if err != nil {
		return nil, fmt.Errorf("mqtest: end offsets of %q: %w", topic, err)
	}
	out := make(map[int]int64, len(reqs))
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("mqtest: end offset of %q partition %d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

// CommittedOffsets returns the offsets group has committed for every
// partition of topic, keyed by partition. Partitions without a commit (and
// every partition of an unknown group) report -1. A topic that does not
// exist is an error wrapping [kafka.UnknownTopicOrPartition].
func (c *Cluster) CommittedOffsets(ctx context.Context, group, topic string) (map[int]int64, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, errors.New("mqtest: CommittedOffsets: empty group")
	}
	ids, err := c.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: group,
		Topics:  map[string][]int{topic: ids},
	})
	if err != nil {
		return nil, fmt.Errorf("mqtest: committed offsets of group %q on %q: %w", group, topic, err)
	}
	out := make(map[int]int64, len(ids))
	for _, id := range ids {
		out[id] = -1
	}
	if errors.Is(resp.Error, kafka.GroupIdNotFound) {
		// kfake answers GROUP_ID_NOT_FOUND for a group it has never
		// seen, where a real broker answers offset -1.
		return out, nil
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("mqtest: committed offsets of group %q on %q: %w", group, topic, resp.Error)
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("mqtest: committed offset of group %q on %q partition %d: %w", group, topic, p.Partition, p.Error)
		}
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// Produce writes msgs to topic exactly as given, for setting up tests (for
// example with bytes a codec cannot decode). Each message goes to the
// partition in its Partition field (0 when unset), in order; no balancer is
// involved. Message.Topic must be empty or equal to topic. A zero
// Message.Time is set to the current time. Records are written with
// acks=all, one request per partition, and Produce returns the first error.
func (c *Cluster) Produce(ctx context.Context, topic string, msgs ...kafka.Message) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	ids, err := c.partitions(ctx, topic)
	if err != nil {
		return err
	}
	byPart := make(map[int][]kafka.Message)
	var order []int
	now := time.Now()
	for i, m := range msgs {
		if m.Topic != "" && m.Topic != topic {
			return fmt.Errorf("mqtest: Produce to %q: message %d names topic %q", topic, i, m.Topic)
		}
		if _, ok := slices.BinarySearch(ids, m.Partition); !ok {
			return fmt.Errorf("mqtest: Produce to %q: message %d: partition %d does not exist (topic has %d)", topic, i, m.Partition, len(ids))
		}
		ts := m.Time
		if ts.IsZero() {
			ts = now
		}
		if _, ok := byPart[m.Partition]; !ok {
			order = append(order, m.Partition)
		}
		m.Time = ts
		byPart[m.Partition] = append(byPart[m.Partition], m)
	}
	for _, p := range order {
		if err := c.producePartition(ctx, topic, p, byPart[p]); err != nil {
			return fmt.Errorf("mqtest: producing %d records to %q partition %d: %w", len(byPart[p]), topic, p, err)
		}
	}
	return nil
}

// producePartition writes records to one partition, retrying errors the
// broker calls temporary (a leader that is still being elected right after
// the topic was created, for instance) until ctx ends. Each attempt builds
// its records afresh: a kafka.Record's key and value are readers, empty once
// a request has consumed them, so reusing them would resend empty records.
func (c *Cluster) producePartition(ctx context.Context, topic string, p int, msgs []kafka.Message) error {
	return retryTemporary(ctx, func() error {
		records := make([]kafka.Record, len(msgs))
		for i, m := range msgs {
			records[i] = kafka.Record{Time: m.Time, Key: kafka.NewBytes(m.Key), Value: kafka.NewBytes(m.Value), Headers: m.Headers}
		}
		resp, err := c.client.Produce(ctx, &kafka.ProduceRequest{
			Topic:        topic,
			Partition:    p,
			RequiredAcks: kafka.RequireAll,
			Records:      kafka.NewRecordReader(records...),
		})
		if err == nil && resp != nil {
			err = resp.Error
			if err == nil {
				for _, rerr := range resp.RecordErrors {
					err = rerr
					break
				}
			}
		}
		return err
	})
}

// retryTemporary runs attempt until it returns nil or an error that is not
// a temporary Kafka error, at most 50 times, waiting 50 ms more after each
// failure up to 500 ms, and returns its last error (also when ctx ends).
func retryTemporary(ctx context.Context, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		var kerr kafka.Error
		if err == nil || !errors.As(err, &kerr) || !kerr.Temporary() || n >= 50 {
			return err
		}
		t := time.NewTimer(time.Duration(min(n, 10)) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// ReadAll reads topic from the beginning of every partition, without a
// consumer group, until it has n messages, and returns them sorted by
// partition and offset. When the topic holds more than n messages, which
// ones are returned depends on arrival order across partitions; within a
// partition they are always the earliest. If ctx ends first, ReadAll returns
// the messages read so far and an error wrapping ctx.Err(). A topic that
// does not exist is an error wrapping [kafka.UnknownTopicOrPartition].
func (c *Cluster) ReadAll(ctx context.Context, topic string, n int) ([]kafka.Message, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	ids, err := c.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		msg kafka.Message
		err error
	}
	results := make(chan result)
	var wg sync.WaitGroup
	for _, id := range ids {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:         c.Addrs(),
			Topic:           topic,
			Partition:       id,
			MinBytes:        1,
			MaxBytes:        10 << 20,
			MaxWait:         readMaxWait,
			ReadLagInterval: -1,
			StartOffset:     kafka.FirstOffset,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(rctx)
				if rctx.Err() != nil {
					return
				}
				select {
				case results <- result{m, err}:
				case <-rctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}

	var msgs []kafka.Message
	var rerr error
	for len(msgs) < n && rerr == nil {
		select {
		case res := <-results:
			if res.err != nil {
				rerr = fmt.Errorf("mqtest: reading %q: %w", topic, res.err)
			} else {
				msgs = append(msgs, res.msg)
			}
		case <-ctx.Done():
			rerr = fmt.Errorf("mqtest: read %d of %d messages from %q: %w", len(msgs), n, topic, ctx.Err())
		}
	}
	cancel()
	wg.Wait()

	slices.SortFunc(msgs, func(a, b kafka.Message) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return msgs, rerr
}
