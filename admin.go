package mq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Topic administration: create, delete and describe topics.
//
// kafka-go's Transport serves metadata requests from a cache, so a topic
// created or deleted a moment ago looks unchanged through it for up to its
// metadata TTL. Every metadata read here therefore goes through a throw-away
// transport whose first request is a real one (freshMetadata).

const (
	// adminRequestTimeout bounds each request an admin function sends.
	adminRequestTimeout = 10 * time.Second
	// topicWaitTimeout bounds, within ctx, how long CreateTopics and
	// DeleteTopics wait for every broker's metadata to show the change.
	topicWaitTimeout = 30 * time.Second
)

// TopicSpec describes a topic for [CreateTopics].
type TopicSpec struct {
	// Name is the topic's name.
	Name string
	// Partitions is the number of partitions (at least 1).
	Partitions int
	// ReplicationFactor is how many brokers keep a copy of each partition.
	// Zero uses the cluster's default.replication.factor. It cannot exceed
	// the number of brokers.
	ReplicationFactor int
	// Configs are topic-level settings (retention.ms, cleanup.policy,
	// min.insync.replicas, …), validated by the broker. Nil sets none.
	Configs map[string]string
}

// TopicDescription is what [DescribeTopic] reports about a topic.
type TopicDescription struct {
	Name string
	// Partitions are sorted by ID.
	Partitions []PartitionDescription
	// ReplicationFactor is the number of replicas of partition 0.
	ReplicationFactor int
	// Configs are the settings made on the topic itself (at creation or
	// later), not the broker's or Kafka's defaults, so they compare with
	// [TopicSpec].Configs.
	Configs map[string]string
}

// PartitionDescription describes one partition of a topic.
type PartitionDescription struct {
	ID int
	// Leader is the ID of the broker leading the partition, -1 when none.
	Leader int
	// Replicas are the IDs of the brokers holding a copy.
	Replicas []int
	// InSync are the IDs of the replicas in sync with the leader.
	InSync []int
}

// CreateTopics creates topics and waits until every broker's metadata shows
// each of them with a leader for every partition, so producers and consumers
// started afterwards find them (Kafka creates topics asynchronously). The
// wait is bounded by ctx and by 30 seconds.
//
// It is idempotent: a topic that already exists with the requested number of
// partitions counts as created (its replication factor and configs are
// neither compared nor changed). The arguments are checked first: an empty
// name, partitions below 1, a replication factor outside [0, 32767] or a
// name listed twice returns an error wrapping [ErrInvalidOption], and no
// topic is created. After that, errors are per topic, joined with
// errors.Join, and the other topics are still created:
//
//   - [*PartitionCountError]: the topic exists with another number of
//     partitions;
//   - [*ReplicationFactorError]: the replication factor is above the number
//     of brokers (checked against the cluster's metadata before asking, and
//     reported by the broker as INVALID_REPLICATION_FACTOR);
//   - [*TopicError]: anything else the broker refused, wrapping its error
//     code and message, so that for instance errors.Is(err,
//     kafka.InvalidConfiguration) reports an invalid config.
//
// Create a consumer's retry and dead-letter topics with the same settings
// through [Recoverer.TopicSpecs].
func CreateTopics(ctx context.Context, brokers []string, topics []TopicSpec, opts ...AdminOption) error {
	names := make([]string, 0, len(topics))
	for _, t := range topics {
		if err := t.validate(); err != nil {
			return err
		}
		if slices.Contains(names, t.Name) {
			return invalid("topic %q is listed twice", t.Name)
		}
		names = append(names, t.Name)
	}
	a, err := newAdmin(brokers, names, opts)
	if err != nil {
		return err
	}
	defer a.close()
	if len(topics) == 0 {
		return nil
	}
	md, err := a.freshMetadata(ctx, nil, names)
	if err != nil {
		return fmt.Errorf("mq: create topics: %w", err)
	}
	var errs []error
	var create []kafka.TopicConfig
	wait := make(map[string]int) // topic -> partitions
	for _, spec := range topics {
		t, ok := findTopic(md, spec.Name)
		switch {
		case ok && t.Error == nil && len(t.Partitions) > 0:
			if len(t.Partitions) != spec.Partitions {
				errs = append(errs, &PartitionCountError{Topic: spec.Name, Partitions: len(t.Partitions), Requested: spec.Partitions})
				continue
			}
			wait[spec.Name] = spec.Partitions
		case spec.ReplicationFactor > len(md.Brokers) && len(md.Brokers) > 0:
			errs = append(errs, &ReplicationFactorError{Topic: spec.Name, ReplicationFactor: spec.ReplicationFactor, Brokers: len(md.Brokers)})
		default:
			create = append(create, spec.kafka())
		}
	}
	if len(create) > 0 {
		resp, err := a.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: create})
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("mq: create topics: %w", authError(err)))...)
		}
		for _, tc := range create {
			spec := topics[slices.Index(names, tc.Topic)]
			switch terr := resp.Errors[tc.Topic]; {
			case terr == nil, errors.Is(terr, kafka.TopicAlreadyExists):
				// Created, or by someone else meanwhile: the wait checks
				// the partition count.
				wait[tc.Topic] = spec.Partitions
			case errors.Is(terr, kafka.InvalidReplicationFactor):
				errs = append(errs, &ReplicationFactorError{Topic: tc.Topic, ReplicationFactor: spec.ReplicationFactor,
					Brokers: len(md.Brokers), Err: terr})
			default:
				errs = append(errs, &TopicError{Topic: tc.Topic, Op: "create", Err: terr})
			}
		}
	}
	if len(wait) > 0 {
		errs = append(errs, a.awaitTopics(ctx, md.Brokers, wait)...)
	}
	if len(errs) == 0 {
		a.log.Info("topics ready", zap.Strings("topics", names))
	}
	return errors.Join(errs...)
}

// DeleteTopics deletes topics and waits until no broker's metadata lists
// them any more (bounded by ctx and by 30 seconds), so that they can be
// created again at once. Deleting a topic that does not exist is not an
// error. An empty name returns an error wrapping [ErrInvalidOption], and no
// topic is deleted. Otherwise errors are per topic ([*TopicError]), joined
// with errors.Join.
func DeleteTopics(ctx context.Context, brokers []string, topics []string, opts ...AdminOption) error {
	for _, t := range topics {
		if t == "" {
			return invalid("topic name must not be empty")
		}
	}
	a, err := newAdmin(brokers, topics, opts)
	if err != nil {
		return err
	}
	defer a.close()
	if len(topics) == 0 {
		return nil
	}
	md, err := a.freshMetadata(ctx, nil, topics)
	if err != nil {
		return fmt.Errorf("mq: delete topics: %w", err)
	}
	resp, err := a.client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("mq: delete topics: %w", authError(err))
	}
	var errs []error
	var gone []string
	for _, t := range topics {
		if terr := resp.Errors[t]; terr != nil && !errors.Is(terr, kafka.UnknownTopicOrPartition) {
			errs = append(errs, &TopicError{Topic: t, Op: "delete", Err: terr})
			continue
		}
		gone = append(gone, t)
	}
	if len(gone) > 0 {
		errs = append(errs, a.awaitDeleted(ctx, md.Brokers, gone)...)
	}
	return errors.Join(errs...)
}

// DescribeTopic reports a topic's partitions (leaders, replicas, in-sync
// replicas) and the configs set on it. A topic that does not exist is a
// [*TopicError] wrapping kafka.UnknownTopicOrPartition.
func DescribeTopic(ctx context.Context, brokers []string, topic string, opts ...AdminOption) (TopicDescription, error) {
	if topic == "" {
		return TopicDescription{}, invalid("topic name must not be empty")
	}
	a, err := newAdmin(brokers, []string{topic}, opts)
	if err != nil {
		return TopicDescription{}, err
	}
	defer a.close()
	md, err := a.freshMetadata(ctx, nil, []string{topic})
	if err != nil {
		return TopicDescription{}, fmt.Errorf("mq: describe topic %q: %w", topic, err)
	}
	t, ok := findTopic(md, topic)
	if !ok {
		return TopicDescription{}, &TopicError{Topic: topic, Op: "describe", Err: kafka.UnknownTopicOrPartition}
	}
	if t.Error != nil {
		return TopicDescription{}, &TopicError{Topic: topic, Op: "describe", Err: t.Error}
	}
	d := TopicDescription{Name: topic, Configs: map[string]string{}}
	for _, p := range t.Partitions {
		pd := PartitionDescription{ID: p.ID, Leader: -1, Replicas: brokerIDs(p.Replicas), InSync: brokerIDs(p.Isr)}
		if p.Leader.Host != "" {
			pd.Leader = p.Leader.ID
		}
		d.Partitions = append(d.Partitions, pd)
	}
	sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].ID < d.Partitions[j].ID })
	if len(d.Partitions) > 0 {
		d.ReplicationFactor = len(d.Partitions[0].Replicas)
	}
	resp, err := a.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{
		Resources: []kafka.DescribeConfigRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic}},
	})
	if err != nil {
		return d, fmt.Errorf("mq: describe configs of topic %q: %w", topic, authError(err))
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return d, &TopicError{Topic: topic, Op: "describe", Err: r.Error}
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigSource == configSourceTopic {
				d.Configs[e.ConfigName] = e.ConfigValue
			}
		}
	}
	return d, nil
}

// configSourceTopic is DescribeConfigs' DYNAMIC_TOPIC_CONFIG source: a value
// set on the topic itself.
const configSourceTopic = 1

func (t TopicSpec) validate() error {
	switch {
	case t.Name == "":
		return invalid("topic name must not be empty")
	case t.Partitions < 1:
		return invalid("topic %q: partitions %d must be >= 1", t.Name, t.Partitions)
	case t.ReplicationFactor < 0 || t.ReplicationFactor > 1<<15-1:
		return invalid("topic %q: replication factor %d must be within [0, 32767] (0: the broker's default)", t.Name, t.ReplicationFactor)
	}
	return nil
}

func (t TopicSpec) kafka() kafka.TopicConfig {
	rf := t.ReplicationFactor
	if rf == 0 {
		rf = -1 // the broker's default (CreateTopics v4+, KIP-464)
	}
	tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: rf}
	keys := make([]string, 0, len(t.Configs))
	for k := range t.Configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: t.Configs[k]})
	}
	return tc
}

// admin holds what the admin functions share: settings, a logger, and a
// client whose transport carries the common options.
type admin struct {
	cfg    adminConfig
	log    *zap.Logger
	addrs  []string
	tr     *kafka.Transport
	client *kafka.Client
}

// newAdmin applies opts and builds the client, whose transport caches the
// metadata of topics only (nil: of every topic).
func newAdmin(brokers []string, topics []string, opts []AdminOption) (*admin, error) {
	cfg := adminConfig{commonConfig: commonConfig{clientID: "mq-admin", dialTimeout: 10 * time.Second}}
	for _, o := range opts {
		if o != nil {
			o.applyAdmin(&cfg)
		}
	}
	if err := validateBrokers(brokers); err != nil {
		return nil, err
	}
	if err := cfg.commonConfig.validate(); err != nil {
		return nil, err
	}
	a := &admin{cfg: cfg, log: logger(cfg.logger), addrs: append([]string(nil), brokers...)}
	a.tr = a.transport(topics)
	a.client = &kafka.Client{Addr: kafka.TCP(a.addrs...), Transport: a.tr, Timeout: adminRequestTimeout}
	return a, nil
}

func (a *admin) close() { a.tr.CloseIdleConnections() }

// transport returns a new transport with the common options, whose metadata
// cache holds metadataTopics (nil: every topic).
func (a *admin) transport(metadataTopics []string) *kafka.Transport {
	return &kafka.Transport{
		Dial:           (&net.Dialer{Timeout: a.cfg.dialTimeout}).DialContext,
		DialTimeout:    a.cfg.dialTimeout,
		ClientID:       a.cfg.clientID,
		TLS:            a.cfg.tls,
		SASL:           a.cfg.sasl,
		MetadataTopics: metadataTopics,
	}
}

// freshMetadata asks addr (nil: the bootstrap brokers) for the metadata of
// topics through a throw-away transport, whose first answer comes from the
// broker rather than from a cache. kafka-go asks with
// AllowAutoTopicCreation=false, so this never creates a topic.
func (a *admin) freshMetadata(ctx context.Context, addr net.Addr, topics []string) (*kafka.MetadataResponse, error) {
	tr := a.transport(topics)
	// kafka-go bounds a connection's handshake by DialTimeout alone, not by
	// ctx: keep it within ctx's deadline so no goroutine outlives the call.
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left > 0 && left < tr.DialTimeout {
			tr.DialTimeout = left
		}
	}
	defer tr.CloseIdleConnections()
	if addr == nil {
		addr = kafka.TCP(a.addrs...)
	}
	cl := &kafka.Client{Addr: addr, Transport: tr, Timeout: adminRequestTimeout}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", authError(err))
	}
	return md, nil
}

// awaitTopics polls every broker until each topic of want shows want[topic]
// partitions, each with a leader, on all of them. It returns one error per
// topic that did not get there.
func (a *admin) awaitTopics(ctx context.Context, brokers []kafka.Broker, want map[string]int) []error {
	names := make([]string, 0, len(want))
	for t := range want {
		names = append(names, t)
	}
	sort.Strings(names)
	return a.poll(ctx, brokers, names, func(t kafka.Topic, ok bool) (bool, error) {
		switch {
		case !ok:
			return false, nil
		case !topicReady(t):
			return false, nil
		case len(t.Partitions) != want[t.Name]:
			return false, &PartitionCountError{Topic: t.Name, Partitions: len(t.Partitions), Requested: want[t.Name]}
		}
		return true, nil
	}, "create", "not ready")
}

// awaitDeleted polls every broker until none lists topics.
func (a *admin) awaitDeleted(ctx context.Context, brokers []kafka.Broker, topics []string) []error {
	return a.poll(ctx, brokers, topics, func(t kafka.Topic, ok bool) (bool, error) {
		return !ok || errors.Is(t.Error, kafka.UnknownTopicOrPartition), nil
	}, "delete", "still listed")
}

// poll asks every broker for fresh metadata of topics until done reports
// every topic done on every broker, done fails a topic, or the wait times
// out (ctx, or topicWaitTimeout). It returns one error per topic not done.
func (a *admin) poll(ctx context.Context, brokers []kafka.Broker, topics []string,
	done func(t kafka.Topic, ok bool) (bool, error), op, notDoneWhat string) []error {
	ctx, cancel := context.WithTimeout(ctx, topicWaitTimeout)
	defer cancel()
	addrs := make([]net.Addr, 0, len(brokers))
	for _, b := range brokers {
		addrs = append(addrs, kafka.TCP(net.JoinHostPort(b.Host, strconv.Itoa(b.Port))))
	}
	if len(addrs) == 0 {
		addrs = append(addrs, nil) // no broker list: ask the bootstrap brokers
	}
	pending := append([]string(nil), topics...)
	var errs []error
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 250*time.Millisecond) {
		notDone := make(map[string]string) // topic -> why, as seen on some broker
		failed := make(map[string]error)
		for _, addr := range addrs {
			md, err := a.freshMetadata(ctx, addr, pending)
			if err != nil {
				for _, name := range pending {
					notDone[name] = err.Error()
				}
				continue
			}
			for _, name := range pending {
				t, ok := findTopic(md, name)
				isDone, err := done(t, ok)
				switch {
				case err != nil:
					failed[name] = err
				case !isDone:
					notDone[name] = fmt.Sprintf("%s on broker %v: %s", notDoneWhat, addr, describeTopicState(t, ok))
				}
			}
		}
		next := pending[:0:0]
		for _, name := range pending {
			if err, ok := failed[name]; ok {
				errs = append(errs, err)
			} else if _, ok := notDone[name]; ok {
				next = append(next, name)
			}
		}
		if pending = next; len(pending) == 0 {
			return errs
		}
		if !sleepCtx(ctx, backoff) {
			for _, name := range pending {
				errs = append(errs, &TopicError{Topic: name, Op: op, Err: fmt.Errorf("%s: %w", notDone[name], ctx.Err())})
			}
			return errs
		}
	}
}

func findTopic(md *kafka.MetadataResponse, topic string) (kafka.Topic, bool) {
	for _, t := range md.Topics {
		if t.Name == topic {
			return t, true
		}
	}
	return kafka.Topic{}, false
}

// topicReady reports whether t exists with partitions that all have a leader.
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

func describeTopicState(t kafka.Topic, ok bool) string {
	switch {
	case !ok:
		return "not in metadata"
	case t.Error != nil:
		return t.Error.Error()
	case len(t.Partitions) == 0:
		return "no partitions"
	}
	var missing []string
	for _, p := range t.Partitions {
		if p.Error != nil || p.Leader.Host == "" {
			missing = append(missing, strconv.Itoa(p.ID))
		}
	}
	if len(missing) > 0 {
		return "no leader for partitions " + strings.Join(missing, ",")
	}
	return fmt.Sprintf("%d partitions", len(t.Partitions))
}

func brokerIDs(bs []kafka.Broker) []int {
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}
