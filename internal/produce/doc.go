// Package produce is mq's producer engine: it takes records as bytes
// (encoding values is the typed layer's job, in package mq) and delivers
// them to the partition leaders of a cluster reached through a
// [wire.Network].
//
// Structure:
//
//   - [Engine.Produce] buffers a record (bounded by Config.MaxBuffered,
//     blocking only on that bound) and never waits for metadata: a record
//     whose topic has no metadata yet waits in its topic until the metadata
//     loop resolves it (or finds the topic missing).
//   - Partitioning happens in the engine: an explicit partition
//     (Config.ManualPartitions), the Java client's murmur2 hash for keys, a
//     sticky partition per batch for nil keys (KIP-794), or a custom
//     kafka.Balancer.
//   - One sink per broker sends the batches of the partitions that broker
//     leads, in pipelined produce requests on its own connection, never
//     waiting for other brokers. A request holds at most one batch per
//     partition and at most Config.MaxRequestBytes.
//   - The metadata loop refreshes the topics in use when a leader is missing
//     or a request failed for a routing reason, moves partitions between
//     sinks (a partition moves only once nothing of it is in flight on its
//     old sink), expires records at their delivery deadline, and obtains
//     the producer ID.
//   - Idempotence (KIP-98): every batch carries a producer ID, epoch and
//     base sequence; a partition has up to five batches in flight and
//     resends from its oldest unacknowledged batch after a failure, so the
//     broker deduplicates a retry after a lost response and rejects
//     anything out of order. When a partition's sequence chain breaks
//     (OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID for the batch the
//     broker should expect next, a batch failed or split), the partition
//     restarts its chain at sequence 0 under a fresh producer ID once
//     nothing of it is in flight (the reset rules of KIP-360; see
//     sequence.go).
//
// Every record given to Produce is reported exactly once to Config.Done.
package produce
