package mqs3

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mqkit/mq"
	"go.uber.org/zap"
)

// Backup stores runs of consecutive records of a partition as objects in an
// S3 bucket, one object per run (split by [WithMaxMessages] and
// [WithMaxBytes]), named by [ObjectKey] after the run's first and last
// offset. It is safe for concurrent use; stores of one partition are
// serialized.
//
// Storing is idempotent per offset: after any sequence of crashes and
// redeliveries, every offset stored is held by exactly one object (see the
// package documentation for the rule and its one exception, two processes
// storing the same partition at the same time).
type Backup struct {
	client API
	bucket string
	cfg    backupConfig
	log    *zap.Logger

	mu    sync.Mutex
	parts map[partitionID]*partitionState

	objects, records, bytes, deleted, retries atomic.Int64
}

type partitionID struct {
	topic     string
	partition int
}

// partitionState serializes the stores of a partition and remembers the
// object that holds the highest offset stored so far, to list only from it
// on the next store.
type partitionState struct {
	mu   sync.Mutex
	last *Object
}

// Stats counts what a Backup did.
type Stats struct {
	Objects int64 // objects uploaded
	Records int64 // records in them
	Bytes   int64 // bytes uploaded (after compression)
	Deleted int64 // objects deleted because a new object held all their offsets
	Retries int64 // failed S3 requests that were retried
}

// New returns a Backup writing to bucket through client. The bucket must
// exist.
func New(client API, bucket string, opts ...Option) (*Backup, error) {
	cfg := defaultBackupConfig()
	for _, o := range opts {
		if o != nil {
			o.applyBackup(&cfg)
		}
	}
	if client == nil {
		return nil, invalid("nil S3 client")
	}
	if bucket == "" {
		return nil, invalid("bucket must not be empty")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Backup{client: client, bucket: bucket, cfg: cfg, log: cfg.logger().With(zap.String("bucket", bucket)),
		parts: make(map[partitionID]*partitionState)}, nil
}

// Stats returns what the Backup did so far.
func (b *Backup) Stats() Stats {
	return Stats{Objects: b.objects.Load(), Records: b.records.Load(), Bytes: b.bytes.Load(),
		Deleted: b.deleted.Load(), Retries: b.retries.Load()}
}

// Store stores recs, consecutive records of one partition in offset order,
// and returns once all of them are held by objects in the bucket. S3 errors
// are retried with backoff until ctx ends (or [WithMaxRetryTime] passes);
// errors S3 cannot recover from (no such bucket, access denied) are returned
// at once, marked [mq.Permanent].
//
// On error it returns how many leading records are stored: recs[:stored]
// are in the bucket, the rest may not be.
func (b *Backup) Store(ctx context.Context, recs []Record) (stored int, err error) {
	if len(recs) == 0 {
		return 0, nil
	}
	id := partitionID{recs[0].Topic, recs[0].Partition}
	if id.topic == "" || id.partition < 0 {
		return 0, mq.Permanent(fmt.Errorf("mqs3: record without topic or partition (topic %q, partition %d)", id.topic, id.partition))
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Topic != id.topic || recs[i].Partition != id.partition {
			return 0, mq.Permanent(fmt.Errorf("mqs3: records of %s/%d and %s/%d in one store", id.topic, id.partition, recs[i].Topic, recs[i].Partition))
		}
		if recs[i].Offset <= recs[i-1].Offset {
			return 0, mq.Permanent(fmt.Errorf("mqs3: %s/%d: offset %d follows %d: records must be in increasing offset order", id.topic, id.partition, recs[i].Offset, recs[i-1].Offset))
		}
	}
	lines := make([][]byte, len(recs))
	for i := range recs {
		l, err := json.Marshal(recs[i])
		if err != nil {
			return 0, mq.Permanent(fmt.Errorf("mqs3: %s/%d offset %d: %w", id.topic, id.partition, recs[i].Offset, err))
		}
		lines[i] = append(l, '\n')
	}

	ps := b.partition(id)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for stored < len(recs) {
		n, size := 1, len(lines[stored])
		for stored+n < len(recs) && n < b.cfg.maxMessages && size+len(lines[stored+n]) <= b.cfg.maxBytes {
			size += len(lines[stored+n])
			n++
		}
		if err := b.storeRun(ctx, ps, id, recs[stored:stored+n], lines[stored:stored+n]); err != nil {
			return stored, err
		}
		stored += n
	}
	return stored, nil
}

func (b *Backup) partition(id partitionID) *partitionState {
	b.mu.Lock()
	defer b.mu.Unlock()
	ps := b.parts[id]
	if ps == nil {
		ps = &partitionState{}
		b.parts[id] = ps
	}
	return ps
}

// storeRun stores one object's worth of records. It applies the rule of the
// package documentation: existing objects overlapping the run decide what is
// uploaded, and those the upload supersedes are deleted after it.
func (b *Backup) storeRun(ctx context.Context, ps *partitionState, id partitionID, recs []Record, lines [][]byte) error {
	first, last := recs[0].Offset, recs[len(recs)-1].Offset
	existing, err := b.overlapping(ctx, ps, id, first, last)
	if err != nil {
		return err
	}
	plan := planRun(recs, existing)

	var uploaded *Object
	if plan.lo < plan.hi {
		o := Object{Topic: id.topic, Partition: id.partition, First: recs[plan.lo].Offset, Last: recs[plan.hi-1].Offset, Gzip: b.cfg.gzip}
		o.Key = ObjectKey(b.cfg.prefix, id.topic, id.partition, o.First, o.Last, o.Gzip)
		body, err := b.body(lines[plan.lo:plan.hi])
		if err != nil {
			return err
		}
		o.Size = int64(len(body))
		contentType := "application/x-ndjson"
		if o.Gzip {
			contentType = "application/gzip"
		}
		err = b.retry(ctx, "put "+o.Key, func(ctx context.Context) error {
			_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket:        aws.String(b.bucket),
				Key:           aws.String(o.Key),
				Body:          bytes.NewReader(body),
				ContentLength: aws.Int64(int64(len(body))),
				ContentType:   aws.String(contentType),
			})
			return err
		})
		if err != nil {
			return err
		}
		b.objects.Add(1)
		b.records.Add(int64(plan.hi - plan.lo))
		b.bytes.Add(o.Size)
		uploaded = &o
		b.log.Debug("object stored", zap.String("key", o.Key), zap.Int("records", plan.hi-plan.lo))
	}
	for _, o := range plan.superseded {
		if uploaded != nil && o.Key == uploaded.Key {
			continue // rewritten in place
		}
		err := b.retry(ctx, "delete "+o.Key, func(ctx context.Context) error {
			_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(o.Key)})
			return err
		})
		if err != nil {
			return err
		}
		b.deleted.Add(1)
		b.log.Debug("superseded object deleted", zap.String("key", o.Key))
	}
	// Remember the object holding the run's last offset.
	switch {
	case uploaded != nil && plan.hi == len(recs):
		ps.last = uploaded
	default:
		ps.last = nil
		for _, o := range plan.kept {
			if o.contains(last, last) {
				ps.last = &o
			}
		}
	}
	return nil
}

// runPlan is what storing a run does: upload recs[lo:hi] (if not empty) and
// delete the superseded objects; kept are the existing objects that stay.
type runPlan struct {
	lo, hi     int
	superseded []Object
	kept       []Object
}

// planRun applies the overlap rule to a run of records (increasing offsets)
// and the existing objects overlapping it:
//
//  1. An object inside another existing object is redundant (an upload
//     interrupted before its deletes): it is deleted.
//  2. An object starting before the run's first offset holds the run's
//     records up to its last offset: they are stored already and dropped
//     from the run.
//  3. An object starting inside the run and ending after it holds the run's
//     records from its first offset on: they are dropped too (the run is
//     cut before the object).
//  4. Objects inside what is left are replaced: deleted after the upload.
//
// Steps 2 and 3 repeat until no object straddles an end of the run, so the
// new object overlaps no object that stays.
func planRun(recs []Record, existing []Object) runPlan {
	var live []Object
	var p runPlan
	for i, o := range existing {
		redundant := false
		for j, c := range existing {
			// Of two objects with the same range, the one listed later is redundant.
			if i != j && c.contains(o.First, o.Last) && (c.First != o.First || c.Last != o.Last || j < i) {
				redundant = true
				break
			}
		}
		if redundant {
			p.superseded = append(p.superseded, o)
		} else {
			live = append(live, o)
		}
	}
	p.lo, p.hi = 0, len(recs)
	for changed := true; changed && p.lo < p.hi; {
		changed = false
		for _, o := range live {
			if p.lo >= p.hi {
				break
			}
			first, last := recs[p.lo].Offset, recs[p.hi-1].Offset
			if !o.overlaps(first, last) {
				continue
			}
			if o.First < first { // holds the run's head
				for p.lo < p.hi && recs[p.lo].Offset <= o.Last {
					p.lo++
				}
				changed = true
			} else if o.Last > last { // holds the run's tail
				for p.hi > p.lo && recs[p.hi-1].Offset >= o.First {
					p.hi--
				}
				changed = true
			}
		}
	}
	for _, o := range live {
		if p.lo < p.hi && recs[p.lo].Offset <= o.First && o.Last <= recs[p.hi-1].Offset {
			p.superseded = append(p.superseded, o)
		} else {
			p.kept = append(p.kept, o)
		}
	}
	return p
}

// overlapping lists the partition's objects that hold some offset of [first,
// last]. When the partition's last known object starts at or before first,
// the listing starts at that object (and checks it is still there);
// otherwise, on the first store of a partition or a redelivery, it lists the
// partition from its beginning.
func (b *Backup) overlapping(ctx context.Context, ps *partitionState, id partitionID, first, last int64) ([]Object, error) {
	dir := partitionDir(b.cfg.prefix, id.topic, id.partition)
	if l := ps.last; l != nil && l.First <= first {
		objs, err := b.list(ctx, dir, l.First, last)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(objs, func(o Object) bool { return o.Key == l.Key }) {
			return overlappingOnly(objs, first, last), nil
		}
		// Another writer replaced it: list everything.
		ps.last = nil
	}
	objs, err := b.list(ctx, dir, 0, last)
	if err != nil {
		return nil, err
	}
	return overlappingOnly(objs, first, last), nil
}

func overlappingOnly(objs []Object, first, last int64) []Object {
	return slices.DeleteFunc(objs, func(o Object) bool { return !o.overlaps(first, last) })
}

// list returns the objects under dir whose first offset is in [from, to], in
// key order. Keys that are not backup objects are skipped.
func (b *Backup) list(ctx context.Context, dir string, from, to int64) ([]Object, error) {
	var objs []Object
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.bucket), Prefix: aws.String(dir)}
	if after := listFrom(dir, from); after != "" {
		in.StartAfter = aws.String(after)
	}
	for {
		var out *s3.ListObjectsV2Output
		err := b.retry(ctx, "list "+dir, func(ctx context.Context) error {
			var err error
			out, err = b.client.ListObjectsV2(ctx, in)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, c := range out.Contents {
			o, ok := ParseObjectKey(b.cfg.prefix, aws.ToString(c.Key))
			if !ok {
				continue
			}
			if o.First > to {
				return objs, nil
			}
			if o.First < from {
				continue
			}
			o.Size = aws.ToInt64(c.Size)
			objs = append(objs, o)
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return objs, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

func (b *Backup) body(lines [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	if !b.cfg.gzip {
		for _, l := range lines {
			buf.Write(l)
		}
		return buf.Bytes(), nil
	}
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		if _, err := zw.Write(l); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// retry calls fn until it succeeds, fails permanently, ctx ends or the max
// retry time passes, waiting with jittered exponential backoff in between.
func (b *Backup) retry(ctx context.Context, op string, fn func(context.Context) error) error {
	start := time.Now()
	backoff := b.cfg.initialBackoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				b.log.Info("S3 request succeeded after retries", zap.String("op", op), zap.Int("attempts", attempt))
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("mqs3: %s: %w", op, errors.Join(ctx.Err(), err))
		}
		if permanent(err) {
			return mq.Permanent(fmt.Errorf("mqs3: %s: %w", op, err))
		}
		if b.cfg.maxRetryTime > 0 && time.Since(start) >= b.cfg.maxRetryTime {
			return fmt.Errorf("mqs3: %s: giving up after %d attempts: %w", op, attempt, err)
		}
		b.retries.Add(1)
		lvl := zap.DebugLevel
		if attempt == 1 || attempt%10 == 0 {
			lvl = zap.WarnLevel
		}
		b.log.Log(lvl, "S3 request failed, retrying", zap.String("op", op), zap.Int("attempt", attempt),
			zap.Duration("backoff", backoff), zap.Error(err))
		wait := time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("mqs3: %s: %w", op, errors.Join(ctx.Err(), err))
		}
		backoff = min(2*backoff, b.cfg.maxBackoff)
	}
}
