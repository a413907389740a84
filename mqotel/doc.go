// Package mqotel reports mq producers and consumers to OpenTelemetry:
// metrics, traces, and trace context propagation through Kafka message
// headers.
//
// It is a separate module, so that the mq core does not depend on
// OpenTelemetry. An [Observer] implements [mq.Observer]; pass it to
// producers and consumers with [mq.WithObserver]:
//
//	obs := mqotel.New() // global meter and tracer providers, W3C trace context
//	producer, _ := mq.NewProducer[Order](brokers, "orders", mq.WithObserver(obs))
//	consumer, _ := mq.NewKafkaConsumer[Order](brokers, "orders", "billing", mq.WithObserver(obs))
//	unregister, _ := obs.ObserveConsumer("billing", consumer) // lag and in-flight gauges
//	defer unregister()
//
// # Traces
//
// Every message sent gets a PRODUCER span "send <topic>", from the send call
// until the broker acknowledged the message (or it failed), a child of the
// span in the send's context. Its trace context is written to the message's
// headers (W3C traceparent by default, see [WithPropagator]). The consumer
// reads it back and processes the message in a CONSUMER span
// "process <topic>", a child of the producer's span (or, with
// [WithLinkedProcessSpans], the root of a new trace linked to it). The
// process span is in every handler's context, so the handlers' own spans
// and sends continue the trace. Handler calls are events on the process
// span (or child spans, see [WithHandlerSpans]); the span ends with the
// message's outcome in mq.outcome and an error status unless every handler
// succeeded.
//
// A consumer with a batch handler ([mq.KafkaConsumer.RegisterBatchHandler])
// starts the process span of each message of a batch when the batch is
// handed over, before any handler. Its per-message handlers get the
// message's process span in their context, and every handler call on a
// message, the batch handler's included, is an event (or child span) of the
// message's process span, with the duration of the call. The batch handler
// itself, one call for many messages, each with a trace of its own, gets
// the consumer's context, without a process span (except for a message
// handed to it alone through the per-message pipeline: its retries on its
// own, retry topics): to continue a message's trace there, extract it from
// the message's headers. The span ends when the message is done: with its
// batch, in the one-by-one processing of a message that leaves the batch
// (one that cannot be decoded, one a handler failed on, or each message of
// a batch that failed for good), which goes on in the same span, or with
// mq.outcome "abandoned" when the consumer stops first. Messages of a retry
// topic are processed one at a time, as above.
//
// Span attributes follow OpenTelemetry's messaging semantic conventions:
// messaging.system ("kafka"), messaging.operation.name and .type,
// messaging.destination.name, messaging.destination.partition.id,
// messaging.consumer.group.name, messaging.kafka.offset and error.type.
//
// # Metrics
//
// Counters and histograms recorded from the observer's hooks (durations in
// seconds):
//
//	messaging.client.sent.messages      counter    sends that finished; error.type on failures
//	messaging.client.operation.duration histogram  send call to acknowledgement
//	messaging.client.consumed.messages  counter    messages passed to the handler pipeline
//	messaging.process.duration          histogram  whole pipeline per message, by mq.outcome
//	mq.consumer.processed.messages      counter    messages finished, by mq.outcome
//	mq.handler.calls                    counter    handler calls, by mq.handler; error.type on failures
//	mq.handler.retries                  counter    handler calls that were retries, by mq.handler
//	mq.handler.duration                 histogram  handler calls, by mq.handler
//	mq.consumer.commits                 counter    offset commits, per partition
//	mq.consumer.rebalances              counter    group generations joined
//
// and gauges read from Stats when metrics are collected, for the consumers
// and producers registered with [Observer.ObserveConsumer] and
// [Observer.ObserveProducer]:
//
//	mq.consumer.lag                     gauge      high-water mark minus committed offset, per partition
//	mq.consumer.in_flight               gauge      fetched messages not yet handled, per partition
//	mq.producer.buffered                gauge      messages buffered or in flight, per topic
//
// Delivered and failed sends are messaging.client.sent.messages without and
// with error.type; skipped, dead-lettered and retry-topic messages are
// mq.consumer.processed.messages with mq.outcome "skipped", "dead_lettered"
// and "retry_topic". Attributes identify the topic (messaging.destination.name),
// partition, consumer group and handler; never keys or offsets, so the number
// of series stays bounded.
//
// # Cost
//
// The observer keeps the attribute sets of every topic, partition and handler
// it has seen, so recording a message's metrics with the SDK allocates
// nothing. With a noop meter provider (go.opentelemetry.io/otel/metric/noop)
// no metric work is done, and with a noop tracer provider
// (go.opentelemetry.io/otel/trace/noop) no span is started and no header is
// read or written: with both, the observer costs a few nanoseconds per
// message and allocates nothing. The global providers, before one is
// installed, are cheap but not free (they start non-recording spans).
package mqotel
