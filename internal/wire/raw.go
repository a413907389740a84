package wire

import (
	"github.com/mqkit/mq/internal/wire/internal/header"
	"github.com/segmentio/kafka-go/protocol"
)

// RawResponse is a response body for callers that decode responses
// themselves (the fetch engine decodes record batches itself: kafka-go's
// types lose null-vs-empty and batch attributes). Body is everything after
// the response header, that is after the correlation id and, for flexible
// versions, the header's tagged fields. It implements protocol.Message, so
// [Pending.Wait] returns it as one.
type RawResponse struct {
	Key     protocol.ApiKey
	Version int16
	Body    []byte
}

// ApiKey returns the API the response answers.
func (r *RawResponse) ApiKey() protocol.ApiKey { return r.Key }

var _ protocol.Message = (*RawResponse)(nil)

// rawBody strips the rest of the response header from b (the frame after
// its size and correlation id).
func rawBody(req protocol.Message, version int16, b []byte) ([]byte, error) {
	if !header.ResponseFlexible(req, version) {
		return b, nil
	}
	return header.SkipTaggedFields(b)
}
