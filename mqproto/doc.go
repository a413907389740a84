// Package mqproto provides a [github.com/mqkit/mq.Codec] for protocol buffer
// messages, using the binary wire format of google.golang.org/protobuf.
//
// The type parameter is the generated message pointer type, and the same
// type parameterises the producer or consumer:
//
//	codec := mqproto.Codec[*chatpb.ChatMessage]{}
//	p, err := mq.NewProducer[*chatpb.ChatMessage](brokers, "chat-messages",
//		mq.WithCodec[*chatpb.ChatMessage](codec))
//
//	c, err := mq.NewKafkaConsumer[*chatpb.ChatMessage](brokers, "chat-messages", "chat-persister",
//		mq.WithCodec[*chatpb.ChatMessage](codec))
//
// Every call to Decode returns a newly allocated message that shares no memory
// with the payload. A consumer decodes a record once and passes the same
// message pointer to each of its handlers, so handlers should not modify it.
// A payload that is not a valid encoding of the message is a decode error,
// which a consumer treats as a poison message (see [github.com/mqkit/mq.DecodeError]).
// An empty payload is the valid encoding of a message whose fields all have
// their default values.
package mqproto
