package mq

import (
	"context"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// RedriveStats counts what [Redrive] did.
type RedriveStats struct {
	Read     int            // messages read from the dead-letter topic
	Redriven int            // messages written back (or that would be, in a dry run)
	Filtered int            // messages the filter left alone
	NoTarget int            // messages without an original-topic header and no target set
	ByTopic  map[string]int // redriven messages per destination topic
}

// redriveRequestTimeout bounds each request Redrive's admin client sends.
const redriveRequestTimeout = 10 * time.Second

// Redrive moves the messages that are in a dead-letter topic when it starts
// back to their original topic (the [HeaderOriginalTopic] header, or the topic
// set with [WithRedriveTarget]), keeping keys, values and headers, and
// reports counts. Kafka cannot delete single records, so the dead-letter topic
// keeps them: use [WithRedriveGroup] to make repeated runs resume instead of
// starting over. Each message is written synchronously (acks=all) before the
// next is read; on error Redrive stops and returns what it did so far.
func Redrive(ctx context.Context, brokers []string, deadLetterTopic string, opts ...RedriveOption) (RedriveStats, error) {
	cfg := redriveConfig{commonConfig: commonConfig{clientID: "mq-redrive", dialTimeout: 10 * time.Second}}
	for _, o := range opts {
		if o != nil {
			o.applyRedrive(&cfg)
		}
	}
	stats := RedriveStats{ByTopic: map[string]int{}}
	if err := validateBrokers(brokers); err != nil {
		return stats, err
	}
	if deadLetterTopic == "" {
		return stats, invalid("dead-letter topic must not be empty")
	}
	log := logger(cfg.logger).With(zap.String("dead_letter_topic", deadLetterTopic))
	if err := cfg.commonConfig.validate(); err != nil {
		return stats, err
	}
	tr := &kafka.Transport{Dial: (&net.Dialer{Timeout: cfg.dialTimeout}).DialContext, DialTimeout: cfg.dialTimeout,
		ClientID: cfg.clientID, TLS: cfg.tls, SASL: cfg.sasl}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: redriveRequestTimeout}

	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{deadLetterTopic}})
	if err != nil {
		return stats, fmt.Errorf("mq: redrive: metadata: %w", err)
	}
	var parts []int
	for _, t := range meta.Topics {
		if t.Name != deadLetterTopic {
			continue
		}
		if t.Error != nil {
			return stats, fmt.Errorf("mq: redrive: topic %q: %w", deadLetterTopic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	if len(parts) == 0 {
		return stats, fmt.Errorf("mq: redrive: topic %q: %w", deadLetterTopic, kafka.UnknownTopicOrPartition)
	}
	sort.Ints(parts)
	reqs := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{deadLetterTopic: reqs}})
	if err != nil {
		return stats, fmt.Errorf("mq: redrive: list offsets: %w", err)
	}
	first, end := map[int]int64{}, map[int]int64{}
	for _, po := range lo.Topics[deadLetterTopic] {
		if po.Error != nil {
			return stats, fmt.Errorf("mq: redrive: offsets of partition %d: %w", po.Partition, po.Error)
		}
		first[po.Partition], end[po.Partition] = po.FirstOffset, po.LastOffset
	}
	if cfg.group != "" {
		of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: cfg.group, Topics: map[string][]int{deadLetterTopic: parts}})
		if err == nil && of.Error == nil {
			for _, p := range of.Topics[deadLetterTopic] {
				if p.Error == nil && p.CommittedOffset > first[p.Partition] {
					first[p.Partition] = p.CommittedOffset
				}
			}
		} else if err != nil {
			return stats, fmt.Errorf("mq: redrive: committed offsets of %q: %w", cfg.group, err)
		}
	}

	producers := map[string]*Producer[[]byte]{}
	defer func() {
		for _, p := range producers {
			_ = p.Close()
		}
	}()
	send := func(ctx context.Context, topic string, m Message[[]byte]) error {
		p, ok := producers[topic]
		if !ok {
			var err error
			p, err = NewProducer[[]byte](brokers, topic, WithCodec[[]byte](BytesCodec{}), WithLogger(cfg.logger),
				WithClientID(cfg.clientID), WithTransport(tr))
			if err != nil {
				return err
			}
			producers[topic] = p
		}
		_, err := p.SendMessage(ctx, m)
		return err
	}

	for _, part := range parts {
		if first[part] >= end[part] {
			continue
		}
		if err := redrivePartition(ctx, brokers, deadLetterTopic, part, first[part], end[part], cfg, &stats, send, log); err != nil {
			return stats, err
		}
		if cfg.group != "" && !cfg.dryRun {
			_, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: cfg.group, GenerationID: -1,
				Topics: map[string][]kafka.OffsetCommit{deadLetterTopic: {{Partition: part, Offset: end[part]}}}})
			if err != nil {
				return stats, fmt.Errorf("mq: redrive: record progress of partition %d: %w", part, err)
			}
		}
	}
	log.Info("redrive finished", zap.Int("read", stats.Read), zap.Int("redriven", stats.Redriven),
		zap.Int("filtered", stats.Filtered), zap.Int("no_target", stats.NoTarget), zap.Bool("dry_run", cfg.dryRun))
	return stats, nil
}

func redrivePartition(ctx context.Context, brokers []string, topic string, part int, from, end int64, cfg redriveConfig,
	stats *RedriveStats, send func(context.Context, string, Message[[]byte]) error, log *zap.Logger) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: part,
		MaxWait: 250 * time.Millisecond, ReadLagInterval: -1,
		Dialer: &kafka.Dialer{ClientID: cfg.clientID, Timeout: cfg.dialTimeout, DualStack: true, TLS: cfg.tls, SASLMechanism: cfg.sasl}})
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("mq: redrive: partition %d: %w", part, err)
	}
	for {
		km, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("mq: redrive: read partition %d: %w", part, err)
		}
		if km.Offset >= end {
			return nil
		}
		stats.Read++
		m := Message[[]byte]{Topic: km.Topic, Partition: km.Partition, Offset: km.Offset, Key: km.Key,
			Value: km.Value, Headers: km.Headers, Time: km.Time, Raw: km.Value}
		if cfg.filter != nil && !cfg.filter(m) {
			stats.Filtered++
		} else {
			target := cfg.target
			if target == "" {
				target = header(km.Headers, HeaderOriginalTopic)
			}
			if target == "" {
				stats.NoTarget++
				log.Warn("message has no original topic; not redriven", zap.Int("partition", part), zap.Int64("offset", km.Offset))
			} else {
				if !cfg.dryRun {
					if err := send(ctx, target, Message[[]byte]{Key: km.Key, Value: km.Value, Headers: km.Headers}); err != nil {
						return fmt.Errorf("mq: redrive %s[%d]@%d to %q: %w", topic, part, km.Offset, target, err)
					}
				}
				stats.Redriven++
				stats.ByTopic[target]++
			}
		}
		if km.Offset >= end-1 {
			return nil
		}
	}
}
