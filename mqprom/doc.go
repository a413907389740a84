// Package mqprom reports mq producers and consumers to Prometheus.
//
// It is a separate module, so that the mq core does not depend on the
// Prometheus client. An [Observer] implements [mq.Observer], updating
// counters and histograms as messages are sent and processed, and
// [prometheus.Collector], also reporting gauges read from the Stats of the
// consumers and producers given to [Observer.ObserveConsumer] and
// [Observer.ObserveProducer] at every scrape:
//
//	obs, err := mqprom.New(prometheus.DefaultRegisterer)
//	producer, _ := mq.NewProducer[Order](brokers, "orders", mq.WithObserver(obs))
//	consumer, _ := mq.NewKafkaConsumer[Order](brokers, "orders", "billing", mq.WithObserver(obs))
//	defer obs.ObserveConsumer("billing", consumer)()
//
// To combine it with other observers (tracing with package mqotel, say), use
// [mq.Observers].
//
// # Metrics
//
// Names carry the namespace "mq" unless [WithNamespace] says otherwise;
// durations are in seconds.
//
//	mq_messages_sent_total{topic}                        counter    messages handed to producers
//	mq_messages_delivered_total{topic}                   counter    messages the broker acknowledged
//	mq_messages_send_failed_total{topic}                 counter    messages that could not be delivered
//	mq_send_duration_seconds{topic}                      histogram  send to acknowledgement or failure
//	mq_messages_consumed_total{topic,group,partition}    counter    messages passed to the handlers
//	mq_messages_processed_total{topic,group,outcome}     counter    messages finished, by mq.Outcome
//	mq_process_duration_seconds{topic,group}             histogram  whole pipeline per message
//	mq_handler_calls_total{topic,group,handler}          counter    handler calls
//	mq_handler_errors_total{topic,group,handler}         counter    handler calls that failed
//	mq_handler_retries_total{topic,group,handler}        counter    handler calls that were retries
//	mq_handler_duration_seconds{topic,group,handler}     histogram  handler calls
//	mq_commits_total{topic,group,partition}              counter    offset commits
//	mq_rebalances_total{group}                           counter    group generations joined
//	mq_consumer_lag{topic,group,partition}               gauge      high-water mark minus committed offset
//	mq_consumer_in_flight{topic,group,partition}         gauge      fetched messages not yet handled
//	mq_producer_buffered{topic}                          gauge      messages buffered or in flight
//
// The outcome label takes the [mq.Outcome] values: handled, skipped,
// dead_lettered, retry_topic, failed and abandoned; skipped, dead-lettered
// and retry-topic messages are counted there. Series of a topic, group,
// partition or handler are created at zero when it is first seen, so rates
// and ratios work from the first scrape. Labels never hold keys, offsets or
// error texts: the number of series is bounded by the topics, partitions,
// groups and handlers.
//
// # Cost
//
// The observer keeps the series of every label combination it has seen, so
// recording an event is a map lookup under a read lock and an atomic add: it
// allocates nothing.
package mqprom
