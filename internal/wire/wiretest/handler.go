package wiretest

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go/protocol"
)

// Handler answers one request. It runs on the goroutine that writes the
// responses of the request's connection, in the order the requests came:
// while it blocks, later responses on that connection wait too (as they
// would behind a slow broker), but requests are still read and recorded,
// and other connections are unaffected. It must be safe for concurrent use
// (every connection calls it) and should return when r.Context() ends.
type Handler func(r *Request) Response

// Request is a request a fake broker read.
type Request struct {
	ctx context.Context

	Broker        int32           // the node ID of the broker that read it
	Conn          int             // the connection's serial number in the cluster (from 1)
	Key           protocol.ApiKey // its API
	Version       int16           // its API version
	CorrelationID int32
	Size          int // the request frame's size in bytes, its size prefix included
	ClientID      string
	Msg           protocol.Message // the decoded request (a kafka-go request type)
}

// Context ends when the request's connection or the cluster closes.
func (r *Request) Context() context.Context { return r.ctx }

// Response tells a fake broker how to answer a request. Build one with
// [Reply], [Raw], [Drop] or [Default]; [Response.After] and
// [Response.Until] hold it back. The zero Response is Default().
type Response struct {
	msg      protocol.Message
	raw      []byte
	isRaw    bool
	drop     bool
	explicit bool // not Default
	delay    time.Duration
	until    <-chan struct{}
}

// Reply answers with msg, a kafka-go response type of the request's API,
// encoded at the request's version.
func Reply(msg protocol.Message) Response { return Response{msg: msg, explicit: true} }

// Raw answers with body as the response body: the broker frames it and
// writes the response header (correlation id, and the tagged-field buffer
// of flexible versions) in front of it.
func Raw(body []byte) Response { return Response{raw: body, isRaw: true, explicit: true} }

// Drop closes the connection without answering (a lost response: the
// request was read, maybe acted on, and the client never hears of it).
func Drop() Response { return Response{drop: true, explicit: true} }

// Default answers as the cluster would without the handler: ApiVersions,
// Metadata and FindCoordinator have built-in answers; any other API without
// one fails the test and drops the connection.
func Default() Response { return Response{} }

// After holds the response (or the drop) back until d after the request was
// read. Later responses on the same connection wait behind it, as Kafka
// answers in order; other connections and the reading of requests go on.
func (r Response) After(d time.Duration) Response {
	r.delay = d
	return r
}

// Until holds the response (or the drop) back until ch is closed, which
// lets a test decide exactly when a broker answers.
func (r Response) Until(ch <-chan struct{}) Response {
	r.until = ch
	return r
}
