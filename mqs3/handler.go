package mqs3

import (
	"context"

	"github.com/mqkit/mq"
)

// HandleBatch stores msgs, messages of one partition in offset order (what
// a batch handler receives), and returns once they are all in the bucket.
// When only the first i were stored it says so, so that the consumer commits
// those and retries from msgs[i]: it returns mq.BatchFailedAt(i, err) with a
// [*StoreError] as err.
//
// It works for a consumer of any T: what is stored is each message's raw
// record ([RecordOf]), not the decoded value.
func HandleBatch[T any](ctx context.Context, b *Backup, msgs []mq.Message[T]) error {
	recs := make([]Record, len(msgs))
	for i := range msgs {
		recs[i] = RecordOf(msgs[i])
	}
	stored, err := b.Store(ctx, recs)
	if err != nil {
		return batchFailedAt(stored, err)
	}
	return nil
}

// BatchFunc returns a batch handler function storing its batches in b (see
// [HandleBatch]), for [mq.KafkaConsumer.RegisterBatchHandlerFunc]. The
// consumer's batch limits ([mq.WithBatchMaxMessages], [mq.WithBatchMaxBytes],
// [mq.WithBatchLinger]) decide the size of the objects, up to the Backup's
// own [WithMaxMessages] and [WithMaxBytes].
func BatchFunc[T any](b *Backup) func(ctx context.Context, msgs []mq.Message[T]) error {
	return func(ctx context.Context, msgs []mq.Message[T]) error { return HandleBatch(ctx, b, msgs) }
}

// BatchHandler returns a batch handler storing its batches in b (see
// [HandleBatch]), for [mq.KafkaConsumer.RegisterBatchHandler].
func BatchHandler[T any](b *Backup) mq.BatchHandler[T] {
	return mq.BatchHandlerFunc[T](BatchFunc[T](b))
}

// Handler returns a per-message handler storing each message in b; prefer
// [BatchHandler]. A message counts as handled only once
// its object is uploaded, and a consumer hands a handler one message of a
// partition at a time, so each object holds one message: correct, but one
// PUT (and one LIST) per message. [mq.WithLanes] does not help: the stores
// of a partition are serialized (the lanes of a partition are not
// consecutive offsets, so they could not share an object anyway), and their
// out-of-order stores list the partition from its start. Prefer the batch
// form.
func Handler[T any](b *Backup) mq.Handler[T] {
	return mq.HandlerFunc[T](func(ctx context.Context, msg mq.Message[T]) error {
		_, err := b.Store(ctx, []Record{RecordOf(msg)})
		return err
	})
}
