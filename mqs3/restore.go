package mqs3

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Plan is what a restore reads: the backup objects of one source topic under
// a prefix, by partition, in offset order.
type Plan struct {
	Bucket     string
	Prefix     string
	Topic      string // the source topic
	Partitions []PartitionPlan
	Ignored    int // keys under the prefix that are not backup objects of Topic
}

// PartitionPlan is the part of a [Plan] for one source partition.
type PartitionPlan struct {
	Partition int
	Objects   []Object // read in this order
	// Redundant objects are held entirely by another object (an upload
	// interrupted before its deletes): they are not read.
	Redundant []Object
	// Overlapping counts objects sharing some offsets with an earlier one
	// without being inside it (two writers of the partition at once): their
	// records are read, and offsets already restored are skipped.
	Overlapping int
	Bytes       int64 // stored bytes of Objects
}

// First returns the first offset the partition's objects hold, or -1.
func (p PartitionPlan) First() int64 {
	if len(p.Objects) == 0 {
		return -1
	}
	return p.Objects[0].First
}

// Last returns the last offset the partition's objects hold, or -1.
func (p PartitionPlan) Last() int64 {
	last := int64(-1)
	for _, o := range p.Objects {
		last = max(last, o.Last)
	}
	return last
}

// PlanRestore lists the backup objects under prefix in bucket and orders them
// for a restore. With several topics under the prefix, [WithSourceTopic] must
// name one. Only [WithSourceTopic] and [WithLogger] apply.
func PlanRestore(ctx context.Context, client API, bucket, prefix string, opts ...RestoreOption) (*Plan, error) {
	cfg := defaultRestoreConfig()
	for _, o := range opts {
		if o != nil {
			o.applyRestore(&cfg)
		}
	}
	return planRestore(ctx, client, bucket, prefix, &cfg)
}

func planRestore(ctx context.Context, client API, bucket, prefix string, cfg *restoreConfig) (*Plan, error) {
	if client == nil {
		return nil, invalid("nil S3 client")
	}
	if bucket == "" {
		return nil, invalid("bucket must not be empty")
	}
	dir := rootDir(prefix)
	if cfg.sourceTopic != "" {
		dir = topicDir(prefix, cfg.sourceTopic)
	}
	plan := &Plan{Bucket: bucket, Prefix: prefix, Topic: cfg.sourceTopic}
	byTopic := make(map[string]map[int][]Object)
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(dir)}
	for {
		out, err := client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("mqs3: list s3://%s/%s: %w", bucket, dir, err)
		}
		for _, c := range out.Contents {
			o, ok := ParseObjectKey(prefix, aws.ToString(c.Key))
			if !ok {
				plan.Ignored++
				continue
			}
			o.Size = aws.ToInt64(c.Size)
			if byTopic[o.Topic] == nil {
				byTopic[o.Topic] = make(map[int][]Object)
			}
			byTopic[o.Topic][o.Partition] = append(byTopic[o.Topic][o.Partition], o)
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	switch {
	case len(topics) == 0:
		return nil, fmt.Errorf("mqs3: no backup objects under s3://%s/%s", bucket, dir)
	case len(topics) > 1:
		return nil, fmt.Errorf("mqs3: s3://%s/%s holds the backups of topics %s: choose one (WithSourceTopic)", bucket, dir, strings.Join(topics, ", "))
	}
	plan.Topic = topics[0]
	for p, objs := range byTopic[plan.Topic] {
		plan.Partitions = append(plan.Partitions, planPartition(p, objs))
	}
	sort.Slice(plan.Partitions, func(i, j int) bool { return plan.Partitions[i].Partition < plan.Partitions[j].Partition })
	return plan, nil
}

// planPartition orders a partition's objects by first offset (longest first
// on ties) and sets aside those inside another.
func planPartition(p int, objs []Object) PartitionPlan {
	slices.SortFunc(objs, func(a, b Object) int {
		switch {
		case a.First != b.First:
			return cmpInt64(a.First, b.First)
		case a.Last != b.Last:
			return cmpInt64(b.Last, a.Last)
		}
		return strings.Compare(a.Key, b.Key)
	})
	pp := PartitionPlan{Partition: p}
	reach := int64(-1) // highest offset of the objects kept so far
	for _, o := range objs {
		switch {
		case o.Last <= reach:
			pp.Redundant = append(pp.Redundant, o)
			continue
		case o.First <= reach:
			pp.Overlapping++
		}
		pp.Objects = append(pp.Objects, o)
		pp.Bytes += o.Size
		reach = o.Last
	}
	return pp
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// RestoreStats reports what [Restore] did.
type RestoreStats struct {
	Objects int   // objects read
	Records int64 // records produced (in a dry run: that would be)
	// Duplicates counts records skipped because an earlier object already
	// held their offset (see [PartitionPlan.Overlapping]).
	Duplicates  int64
	ByPartition map[int]int64 // records per source partition
}

// Restore republishes the backup of a topic, the objects under prefix in
// bucket, to topic on brokers: per source partition in offset order, with
// each record's key, value (null stays null), headers and timestamp. Records
// go to the partition they were read from, so the target must have at least
// as many partitions as the backup has (else Restore fails before producing
// anything), unless [WithPartitionByKey]. Partitions are restored
// concurrently ([WithConcurrency]).
//
// It produces with acks from all in-sync replicas and stops at the first
// record that cannot be delivered; records are not deduplicated against what
// the target already holds, so restoring twice writes everything twice. The
// target topic must exist. Records keep their timestamps: the target's
// time-based retention deletes those older than its retention.ms (see the
// package documentation).
func Restore(ctx context.Context, client API, bucket, prefix string, brokers []string, topic string, opts ...RestoreOption) (RestoreStats, error) {
	cfg := defaultRestoreConfig()
	for _, o := range opts {
		if o != nil {
			o.applyRestore(&cfg)
		}
	}
	stats := RestoreStats{ByPartition: make(map[int]int64)}
	if topic == "" {
		return stats, invalid("target topic must not be empty")
	}
	if cfg.concurrency < 1 {
		return stats, invalid("concurrency %d must be >= 1", cfg.concurrency)
	}
	if !cfg.dryRun && len(brokers) == 0 {
		return stats, invalid("no brokers")
	}
	plan, err := planRestore(ctx, client, bucket, prefix, &cfg)
	if err != nil {
		return stats, err
	}
	r := &restorer{cfg: &cfg, client: client, bucket: bucket, brokers: brokers, topic: topic, log: cfg.logger()}
	if len(brokers) > 0 {
		if err := r.checkPartitions(ctx, plan); err != nil {
			return stats, err
		}
	}
	defer r.closeProducers()

	var mu sync.Mutex
	var errs []error
	work := make(chan PartitionPlan)
	var wg sync.WaitGroup
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(cfg.concurrency, len(plan.Partitions)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pp := range work {
				ps, err := r.partition(wctx, plan.Topic, pp)
				mu.Lock()
				stats.Objects += ps.Objects
				stats.Records += ps.Records
				stats.Duplicates += ps.Duplicates
				stats.ByPartition[pp.Partition] = ps.Records
				if err != nil {
					errs = append(errs, err)
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, pp := range plan.Partitions {
		select {
		case work <- pp:
		case <-wctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return stats, errors.Join(errs...)
}

type restorer struct {
	cfg     *restoreConfig
	client  API
	bucket  string
	brokers []string
	topic   string
	log     *zap.Logger

	mu        sync.Mutex
	producers map[int]*mq.Producer[[]byte] // by target partition; -1: by key
}

// checkPartitions fails unless the target topic exists and, without
// WithPartitionByKey, has every source partition of the plan.
func (r *restorer) checkPartitions(ctx context.Context, plan *Plan) error {
	transport := &kafka.Transport{TLS: r.cfg.tls, SASL: r.cfg.sasl}
	defer transport.CloseIdleConnections()
	kc := &kafka.Client{Addr: kafka.TCP(r.brokers...), Transport: transport}
	res, err := kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{r.topic}})
	if err != nil {
		return fmt.Errorf("mqs3: metadata of topic %q: %w", r.topic, err)
	}
	n := -1
	for _, t := range res.Topics {
		if t.Name != r.topic {
			continue
		}
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return fmt.Errorf("mqs3: target topic %q does not exist: create it first (restore never creates topics): %w", r.topic, t.Error)
			}
			return fmt.Errorf("mqs3: metadata of topic %q: %w", r.topic, t.Error)
		}
		n = len(t.Partitions)
	}
	if n < 1 {
		return fmt.Errorf("mqs3: target topic %q does not exist: create it first (restore never creates topics)", r.topic)
	}
	if r.cfg.byKey {
		return nil
	}
	for _, pp := range plan.Partitions {
		if pp.Partition >= n {
			return fmt.Errorf("mqs3: the backup of %q has partition %d but target topic %q has %d partition(s): add partitions, or restore with WithPartitionByKey (-by-key)",
				plan.Topic, pp.Partition, r.topic, n)
		}
	}
	return nil
}

// fixedPartition sends every message to one partition.
type fixedPartition int

func (p fixedPartition) Balance(_ kafka.Message, _ ...int) int { return int(p) }

func (r *restorer) producer(partition int) (*mq.Producer[[]byte], error) {
	key := partition
	if r.cfg.byKey {
		key = -1
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.producers[key]; p != nil {
		return p, nil
	}
	opts := []mq.ProducerOption{mq.WithCodec[[]byte](mq.BytesCodec{}), mq.WithRequiredAcks(mq.AcksAll),
		mq.WithLogger(r.log), mq.WithClientID("mq-s3-restore")}
	if !r.cfg.byKey {
		opts = append(opts, mq.WithBalancer(fixedPartition(partition)))
	}
	if r.cfg.tls != nil {
		opts = append(opts, mq.WithTLS(r.cfg.tls))
	}
	if r.cfg.sasl != nil {
		opts = append(opts, mq.WithSASL(r.cfg.sasl))
	}
	opts = append(opts, r.cfg.producer...)
	p, err := mq.NewProducer[[]byte](r.brokers, r.topic, opts...)
	if err != nil {
		return nil, err
	}
	if r.producers == nil {
		r.producers = make(map[int]*mq.Producer[[]byte])
	}
	r.producers[key] = p
	return p, nil
}

func (r *restorer) closeProducers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.producers {
		_ = p.Close()
	}
}

// sendChunk is how many records one SendMessages call carries.
const sendChunk = 500

// partition restores one source partition, object by object.
func (r *restorer) partition(ctx context.Context, topic string, pp PartitionPlan) (RestoreStats, error) {
	var st RestoreStats
	var prod *mq.Producer[[]byte]
	if !r.cfg.dryRun {
		var err error
		if prod, err = r.producer(pp.Partition); err != nil {
			return st, err
		}
	}
	restored := int64(-1) // highest offset restored
	for _, o := range pp.Objects {
		recs, err := ReadObject(ctx, r.client, r.bucket, o)
		if err != nil {
			return st, err
		}
		st.Objects++
		msgs := make([]mq.Message[[]byte], 0, len(recs))
		for _, rec := range recs {
			if rec.Topic != topic || rec.Partition != pp.Partition {
				return st, fmt.Errorf("mqs3: %s holds a record of %s/%d", o.Key, rec.Topic, rec.Partition)
			}
			if rec.Offset <= restored {
				st.Duplicates++
				continue
			}
			msgs = append(msgs, rec.Message())
			restored = rec.Offset
		}
		for len(msgs) > 0 {
			n := min(len(msgs), sendChunk)
			if prod != nil {
				if _, err := prod.SendMessages(ctx, msgs[:n]...); err != nil {
					return st, fmt.Errorf("mqs3: restoring %s/%d from %s (%d record(s) of the partition restored before this object): %w",
						topic, pp.Partition, o.Key, st.Records, err)
				}
			}
			st.Records += int64(n)
			msgs = msgs[n:]
		}
		r.log.Debug("object restored", zap.String("key", o.Key), zap.Int64("partition_records", st.Records))
	}
	return st, nil
}

// ReadObject reads the records of a backup object, checking that they are
// in increasing offset order within the object's range.
func ReadObject(ctx context.Context, client API, bucket string, o Object) ([]Record, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Key)})
	if err != nil {
		return nil, fmt.Errorf("mqs3: get %s: %w", o.Key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("mqs3: read %s: %w", o.Key, err)
	}
	recs, err := DecodeObject(data, o.Gzip)
	if err != nil {
		return nil, fmt.Errorf("mqs3: %s: %w", o.Key, err)
	}
	prev := int64(-1)
	for _, rec := range recs {
		if rec.Offset < o.First || rec.Offset > o.Last || rec.Offset <= prev {
			return nil, fmt.Errorf("mqs3: %s: record at offset %d is out of order or outside the object's range", o.Key, rec.Offset)
		}
		prev = rec.Offset
	}
	return recs, nil
}

// DecodeObject decodes the JSON lines of an object's body (gzip-compressed
// if gz).
func DecodeObject(body []byte, gz bool) ([]Record, error) {
	var rd io.Reader = bytes.NewReader(body)
	if gz {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		rd = zr
	}
	br := bufio.NewReader(rd)
	var recs []Record
	for lineNo := 1; ; lineNo++ {
		l, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(l)) > 0 {
			var rec Record
			if jerr := json.Unmarshal(l, &rec); jerr != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, jerr)
			}
			recs = append(recs, rec)
		}
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
