// Package mqs3 backs consumed Kafka messages up to S3-compatible object
// storage and restores them to a topic. It is a module of its own, so that
// the core github.com/mqkit/mq never pulls in the AWS SDK.
//
// # Backup
//
// A [Backup] stores runs of consecutive records of one partition as objects
// of JSON lines, one [Record] per line: topic, partition, offset, timestamp
// (Unix milliseconds), key, value and headers, bytes in base64, null kept
// apart from empty. Objects may be gzip-compressed ([WithGzip]) and hold up to
// [WithMaxMessages] records and [WithMaxBytes] bytes. [Backup.Store] returns
// once the records are in the bucket, retrying S3 errors with backoff until
// its context ends (an outage holds the partition back; nothing is lost or
// skipped).
//
// It plugs into a consumer as a handler whose messages count as handled only
// when their object is uploaded, so the consumer commits exactly what is
// stored:
//
//   - [BatchFunc] (or [HandleBatch]) is the batch form: one object per batch
//     of a partition; a partial failure returns mq.BatchFailedAt with how many
//     messages were stored. Register it with
//     [mq.KafkaConsumer.RegisterBatchHandler] ([BatchHandler]).
//   - [Handler] is the per-message form.
//     A consumer gives a handler one message of a partition at a time and the
//     message may complete only once stored, so every object holds one
//     message: correct, but one PUT (and one LIST) per message, a few
//     hundred messages per second on a local server. [mq.WithLanes] does not
//     speed it up: a partition's stores are serialized, and out-of-order
//     stores list the partition from its start.
//
// What is stored is each message's raw record ([RecordOf]), so the handler
// works with a consumer of any T; use mq.BytesCodec to back up values that
// would not decode.
//
// # Object keys
//
//	<prefix>/<topic>/<partition>/<first offset>-<last offset>.jsonl[.gz]
//
// with both offsets zero-padded to 20 digits, so keys sort by offset
// ([ObjectKey]). A redelivered run with the same boundaries rewrites the same
// key. When the boundaries shift (a restart with other batch sizes, a batch
// cut elsewhere), storing a run [s, e] first lists the partition's objects
// overlapping it and then:
//
//  1. deletes objects lying inside another existing object (left by an
//     upload whose deletes were interrupted);
//  2. drops the run's records up to the end of an object that starts before
//     s: that object holds them already;
//  3. cuts the run before an object that starts inside it and ends after e:
//     that object holds the rest;
//  4. uploads what is left as one object, then deletes the objects inside
//     its range (replaced; a rewrite of the same key is not deleted).
//
// Steps 2 and 3 repeat until no existing object straddles an end of the run.
// Records dropped in 2 and 3 count as stored.
//
// Why every offset ends up in exactly one object: every object holds every
// record of its range (it was made from consecutive consumed records). After
// a store completes, the new object overlaps no object that stays, so the
// objects of a partition keep disjoint ranges. A crash between the upload
// and the deletes leaves only objects inside the new one: the consumer had
// not committed the run, so it redelivers those offsets, and the store that
// covers them again deletes the leftovers; until then [Restore] skips them.
// The listing finds every overlapping object: it starts at the object known
// to hold the partition's highest stored offset, checking that the object is
// still there, and lists from the partition's first object after a start, a
// redelivery to an earlier offset or a change by another process.
//
// The one case this does not cover is two processes storing the same
// partition at the same time (a consumer that lost its partitions without
// noticing, past its session timeout): objects may then overlap partially.
// [PlanRestore] reports such overlaps and [Restore] restores each offset
// once. mqs3 assumes Kafka does not change records already read; if
// compaction removed records between a run's first store and its
// redelivery, the replacing object holds what Kafka still has.
//
// # Restore
//
// [Restore] (and the command mq-s3-restore) reads the objects of a topic
// under a prefix and republishes them, per source partition in offset order,
// keeping keys, values, headers and timestamps, to the same partition of the
// target topic ([WithPartitionByKey] when the target has fewer partitions).
// It produces with an mq.Producer[[]byte] and mq.BytesCodec, acks from all
// in-sync replicas. [PlanRestore] shows what it would read.
//
// Restored records keep their original timestamps, so a target topic's
// time-based retention applies to them as to any old record: a broker
// deletes a log segment once its newest timestamp is older than the
// topic's retention.ms (checked every log.retention.check.interval.ms, 5
// minutes by default), restored minutes ago or not. Restore records older
// than that into a topic whose retention.ms covers them (or -1), or one
// with message.timestamp.type=LogAppendTime (the broker then stamps them
// with the time of the restore, and the original times are lost).
//
// # Testing
//
// The tests run against an in-process fake (gofakes3) and, when
// MQ_S3_ENDPOINT is set, against SeaweedFS (scripts/s3/start.sh); the
// round-trip, crash and outage tests also need KAFKA_BROKERS.
package mqs3
