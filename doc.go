// Package mq provides typed Kafka producers and consumers built on
// github.com/segmentio/kafka-go.
//
// A [Producer] sends values of one Go type to a topic; a [KafkaConsumer]
// reads a topic as a member of a consumer group, decodes each message into the
// same type and passes it to every registered [Handler]. A [Codec] turns
// values into bytes and back; [JSONCodec] is the default, and [BytesCodec],
// [StringCodec] and the protobuf codec in package mqproto are provided.
//
// # Producing
//
//	p, err := mq.NewProducer[ChatMessage](brokers, "chat-messages",
//		mq.WithCompression(mq.CompressionSnappy))
//	if err != nil { ... }
//	defer p.Close()
//	res, err := p.Send(ctx, []byte(msg.ConversationID), msg)
//
// A synchronous send returns after the broker acknowledged the message (all
// in-sync replicas by default) and takes one round trip: batches leave as soon
// as their partition can send, so there is no batch timer to wait for, while
// concurrent senders still share requests. [Producer.SendAsync] and
// [WithAsync] report every outcome exactly once through a callback; the buffer
// is bounded ([WithMaxBufferedRecords]) and blocks senders when full, and
// nothing else does. [Producer.Flush] waits for the messages buffered before
// it and [Producer.Close] flushes, then reports what could not be delivered.
//
// The producer is idempotent by default ([WithIdempotence]): retries after a
// lost response or a leader move write nothing twice and never reorder a
// partition. Each broker has its own pipeline of requests, so a slow broker
// delays only the partitions it leads. A message may name another topic
// ([Message.Topic]) or be a tombstone ([Message.Tombstone]).
//
// Keys are hashed like the Java client's default partitioner, so a key lands
// on the same partition whichever client wrote it.
//
// # Consuming
//
//	c, err := mq.NewKafkaConsumer[ChatMessage](brokers, "chat-messages", "chat-persister")
//	if err != nil { ... }
//	c.RegisterHandler(mq.HandlerFunc[ChatMessage](persist), mq.WithHandlerName("persist"))
//	c.RegisterHandler(mq.HandlerFunc[ChatMessage](backup), mq.WithHandlerName("backup"))
//	err = c.Run(ctx) // blocks until ctx is cancelled or a message fails for good
//
// Each assigned partition is processed by its own goroutine, in offset order.
// An offset is committed only when every handler succeeded on that message and
// on every earlier one of its partition. Commits are batched and also made
// when partitions are revoked and at shutdown, through the generation that
// owns the partition, and never move backwards.
//
// Records are fetched with one connection per broker, all of the member's
// partitions led by a broker in one request, into one memory budget for the
// whole consumer ([WithFetchBufferBytes]). Transaction markers never reach
// handlers and committed offsets move past them; by default only committed
// transactions are read ([WithIsolationLevel]). Null and empty keys, values
// and header values stay distinct; a null value is a tombstone
// ([Message].Tombstone), which skips the codec. [WithTopics] adds topics.
//
// A [BatchHandler] ([KafkaConsumer.RegisterBatchHandler]) gets consecutive
// messages of a partition at once, up to [WithBatchMaxMessages]; it reports
// a partial failure with [BatchFailedAt]. [KafkaConsumer.Pause] and
// [KafkaConsumer.Resume] stop and resume partitions without leaving the
// group; [KafkaConsumer.Seek] and [KafkaConsumer.SeekToTime] move an owned
// partition.
//
// # Errors
//
// A handler error is retried with exponential backoff and jitter
// ([RetryPolicy]); only the handlers that failed are called again. A panic
// counts as a failure. When attempts run out, Run stops the consumer and
// returns a [*HandlerError]; a value the codec cannot decode (a poison
// message) makes it return a [*DecodeError]. In both cases nothing past the
// message is committed, so a restart delivers it again.
//
// Handlers can mark an error with [Permanent] to skip retries, and
// [WithRetryableIf] / [WithHandlerRetryableIf] classify errors once ([NotRetryable],
// [RetryableOnly]). What happens to a message once its handlers gave up is
// chosen with [WithRecoverer]: [StopRecoverer] (the default), [SkipRecoverer],
// [DeadLetterRecoverer], non-blocking retry topics with [RetryTopicRecoverer],
// or a function of your own with [FuncRecoverer]. [Redrive] moves
// dead-lettered messages back. [Middleware] wraps handlers ([Chain],
// [CatchPanics], [Timeout], [Retry], [Logging]).
//
// # Administration
//
// Producers and consumers never create topics. [CreateTopics] creates them
// idempotently (with [Recoverer.TopicSpecs] for retry and dead-letter
// topics) and returns once every broker knows their leaders; [DescribeTopic]
// and [DeleteTopics] complete it. [GroupOffsets] reads a group's committed
// offsets and lag; [ResetOffsets] moves them to the earliest or latest
// record, a time, or given offsets, refusing while the group has members
// (the mq-offsets command does the same from a shell).
//
// # Shutdown
//
// Cancelling Run's context, or calling [KafkaConsumer.Close], stops fetching,
// lets in-flight handlers finish within [WithShutdownTimeout], commits what was
// processed, leaves the group and makes Run return nil.
//
// # Delivery semantics
//
// Delivery is at-least-once. Messages that were processed but not yet
// committed (at most one commit interval's worth per partition) are delivered
// again after a crash or when a partition moves to another member; a graceful
// shutdown commits everything processed, so it causes no redelivery. The
// producer is idempotent by default ([WithIdempotence]): its retries write
// nothing twice; without idempotence, a retry after a lost response can
// write a message twice. Make handlers idempotent.
//
// # Testing
//
// The mqtest module hands out a broker for your tests: an in-process one by
// default, or the cluster named by KAFKA_BROKERS. The examples in this
// package name localhost:9092 and are only compiled; the programs under
// examples/ run on the in-process broker.
package mq
