package mqotel

import (
	"github.com/mqkit/mq"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier adapts Kafka message headers to
// [propagation.TextMapCarrier], so a propagator can read trace context from
// a consumed message or write it to one being sent:
//
//	ctx = propagator.Extract(ctx, &mqotel.HeaderCarrier{Headers: msg.Headers})
//
// Get returns the last header with the key, as [mq.Message.Header] does. Set
// replaces the value of the last header with the key, or appends a header:
// it modifies Headers in place. The [Observer] itself never modifies the
// headers a caller passed in.
type HeaderCarrier struct {
	Headers []mq.Header
}

var _ propagation.TextMapCarrier = (*HeaderCarrier)(nil)

// Get returns the value of the last header named key, or "".
func (c *HeaderCarrier) Get(key string) string { return getHeader(c.Headers, key) }

// Set sets the header named key to value.
func (c *HeaderCarrier) Set(key, value string) {
	if i := lastHeader(c.Headers, key); i >= 0 {
		c.Headers[i].Value = []byte(value)
		return
	}
	c.Headers = append(c.Headers, mq.Header{Key: key, Value: []byte(value)})
}

// Keys returns the header keys, in order (a key repeated in the headers is
// listed as often).
func (c *HeaderCarrier) Keys() []string { return headerKeys(c.Headers) }

func lastHeader(hs []mq.Header, key string) int {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return i
		}
	}
	return -1
}

func getHeader(hs []mq.Header, key string) string {
	if i := lastHeader(hs, key); i >= 0 {
		return string(hs[i].Value)
	}
	return ""
}

func headerKeys(hs []mq.Header) []string {
	keys := make([]string, len(hs))
	for i, h := range hs {
		keys[i] = h.Key
	}
	return keys
}

// readCarrier reads consumed headers; it never writes.
type readCarrier []mq.Header

func (c readCarrier) Get(key string) string { return getHeader(c, key) }
func (c readCarrier) Set(string, string)    {}
func (c readCarrier) Keys() []string        { return headerKeys(c) }

// cowCarrier writes to a copy of the caller's headers, made on the first
// Set, so the caller's slice (possibly shared by several messages) is never
// modified and nothing is allocated when nothing is injected.
type cowCarrier struct {
	headers []mq.Header
	copied  bool
}

func (c *cowCarrier) Get(key string) string { return getHeader(c.headers, key) }
func (c *cowCarrier) Keys() []string        { return headerKeys(c.headers) }

func (c *cowCarrier) Set(key, value string) {
	if !c.copied {
		hs := make([]mq.Header, len(c.headers), len(c.headers)+2)
		copy(hs, c.headers)
		c.headers, c.copied = hs, true
	}
	if i := lastHeader(c.headers, key); i >= 0 {
		c.headers[i].Value = []byte(value)
		return
	}
	c.headers = append(c.headers, mq.Header{Key: key, Value: []byte(value)})
}
