package mqotel

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/mqkit/mq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Attribute sets are computed once per topic, partition, group and handler
// and kept, so that the hot paths record measurements without allocating.
// Their number is bounded by the topology (no keys or offsets).

var (
	opSend    = []attribute.KeyValue{semconv.MessagingOperationName("send"), semconv.MessagingOperationTypeSend}
	opProcess = []attribute.KeyValue{semconv.MessagingOperationName("process"), semconv.MessagingOperationTypeProcess}
)

type attrCache struct {
	mu       sync.RWMutex
	topics   map[string]*topicAttrs
	sends    map[sendKey]*sendAttrs
	parts    map[partKey]*partAttrs
	handlers map[handlerKey]*handlerAttrs
}

// topicAttrs: producer span settings of a topic.
type topicAttrs struct {
	sendName  string
	sendStart []trace.SpanStartOption
}

type sendKey struct {
	topic     string
	partition int
}

// sendAttrs: producer measurements of a partition (-1: unknown).
type sendAttrs struct {
	sent, duration attribute.Set
	sentOK         []metric.AddOption
	durationOK     []metric.RecordOption
}

type partKey struct {
	topic, group string
	partition    int
}

// partAttrs: consumer measurements and span settings of a partition.
type partAttrs struct {
	consumed     []metric.AddOption
	commit       []metric.AddOption
	observe      []metric.ObserveOption
	processName  string
	processStart []trace.SpanStartOption
	base         []attribute.KeyValue

	mu       sync.RWMutex
	outcomes map[mq.Outcome]*outcomeAttrs
}

type outcomeAttrs struct {
	set    attribute.Set
	add    []metric.AddOption
	record []metric.RecordOption
}

type handlerKey struct {
	topic, group, handler string
}

type handlerAttrs struct {
	set    attribute.Set
	add    []metric.AddOption
	record []metric.RecordOption
}

func (c *attrCache) topic(topic string) *topicAttrs {
	c.mu.RLock()
	ta := c.topics[topic]
	c.mu.RUnlock()
	if ta != nil {
		return ta
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ta = c.topics[topic]; ta == nil {
		attrs := append([]attribute.KeyValue{semconv.MessagingSystemKafka, semconv.MessagingDestinationName(topic)}, opSend...)
		ta = &topicAttrs{
			sendName:  "send " + topic,
			sendStart: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...)},
		}
		if c.topics == nil {
			c.topics = make(map[string]*topicAttrs)
		}
		c.topics[topic] = ta
	}
	return ta
}

func (c *attrCache) sendPartition(topic string, partition int) *sendAttrs {
	if partition < 0 {
		partition = -1
	}
	k := sendKey{topic, partition}
	c.mu.RLock()
	sa := c.sends[k]
	c.mu.RUnlock()
	if sa != nil {
		return sa
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sa = c.sends[k]; sa == nil {
		attrs := []attribute.KeyValue{semconv.MessagingSystemKafka, semconv.MessagingDestinationName(topic), opSend[0]}
		if partition >= 0 {
			attrs = append(attrs, semconv.MessagingDestinationPartitionID(itoa(partition)))
		}
		sent := attribute.NewSet(attrs...)
		duration := attribute.NewSet(append(attrs, opSend[1])...)
		sa = &sendAttrs{
			sent:       sent,
			duration:   duration,
			sentOK:     []metric.AddOption{metric.WithAttributeSet(sent)},
			durationOK: []metric.RecordOption{metric.WithAttributeSet(duration)},
		}
		if c.sends == nil {
			c.sends = make(map[sendKey]*sendAttrs)
		}
		c.sends[k] = sa
	}
	return sa
}

func (c *attrCache) partition(topic, group string, partition int) *partAttrs {
	k := partKey{topic, group, partition}
	c.mu.RLock()
	pa := c.parts[k]
	c.mu.RUnlock()
	if pa != nil {
		return pa
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if pa = c.parts[k]; pa == nil {
		base := []attribute.KeyValue{semconv.MessagingSystemKafka, semconv.MessagingDestinationName(topic),
			semconv.MessagingConsumerGroupName(group), semconv.MessagingDestinationPartitionID(itoa(partition))}
		withOp := append(append([]attribute.KeyValue(nil), base...), opProcess[0])
		span := append(append([]attribute.KeyValue(nil), base...), opProcess...)
		baseSet := attribute.NewSet(base...)
		pa = &partAttrs{
			consumed:     []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(withOp...))},
			commit:       []metric.AddOption{metric.WithAttributeSet(baseSet)},
			observe:      []metric.ObserveOption{metric.WithAttributeSet(baseSet)},
			processName:  "process " + topic,
			processStart: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(span...)},
			base:         withOp,
			outcomes:     make(map[mq.Outcome]*outcomeAttrs),
		}
		if c.parts == nil {
			c.parts = make(map[partKey]*partAttrs)
		}
		c.parts[k] = pa
	}
	return pa
}

func (pa *partAttrs) outcome(out mq.Outcome) *outcomeAttrs {
	pa.mu.RLock()
	oa := pa.outcomes[out]
	pa.mu.RUnlock()
	if oa != nil {
		return oa
	}
	pa.mu.Lock()
	defer pa.mu.Unlock()
	if oa = pa.outcomes[out]; oa == nil {
		set := attribute.NewSet(append(append([]attribute.KeyValue(nil), pa.base...), OutcomeKey.String(string(out)))...)
		oa = &outcomeAttrs{
			set:    set,
			add:    []metric.AddOption{metric.WithAttributeSet(set)},
			record: []metric.RecordOption{metric.WithAttributeSet(set)},
		}
		pa.outcomes[out] = oa
	}
	return oa
}

func (c *attrCache) handler(topic, group, handler string) *handlerAttrs {
	k := handlerKey{topic, group, handler}
	c.mu.RLock()
	ha := c.handlers[k]
	c.mu.RUnlock()
	if ha != nil {
		return ha
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ha = c.handlers[k]; ha == nil {
		set := attribute.NewSet(semconv.MessagingSystemKafka, semconv.MessagingDestinationName(topic),
			semconv.MessagingConsumerGroupName(group), HandlerKey.String(handler))
		ha = &handlerAttrs{
			set:    set,
			add:    []metric.AddOption{metric.WithAttributeSet(set)},
			record: []metric.RecordOption{metric.WithAttributeSet(set)},
		}
		if c.handlers == nil {
			c.handlers = make(map[handlerKey]*handlerAttrs)
		}
		c.handlers[k] = ha
	}
	return ha
}

// withAttr returns set with kv added.
func withAttr(set attribute.Set, kv attribute.KeyValue) attribute.Set {
	attrs := append(set.ToSlice(), kv)
	return attribute.NewSet(attrs...)
}

func itoa(i int) string { return strconv.Itoa(i) }

// errorType is the error.type attribute value of err: "canceled" and
// "timeout" for context errors, "panic" for a handler panic, "decode" for a
// value that could not be decoded, "closed" for mq.ErrClosed, otherwise the
// semantic conventions' default, the error's type name (after removing
// fmt.Errorf and mq.Permanent wrappers).
func errorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, mq.ErrClosed):
		return "closed"
	}
	var pe *mq.PanicError
	if errors.As(err, &pe) {
		return "panic"
	}
	var de *mq.DecodeError
	if errors.As(err, &de) {
		return "decode"
	}
	var he *mq.HandlerError
	if errors.As(err, &he) && he.Err != nil {
		err = he.Err
	}
	for mq.IsPermanent(err) {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	return semconv.ErrorType(err).Value.AsString()
}
