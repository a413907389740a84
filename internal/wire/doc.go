// Package wire owns mq's connections to Kafka brokers and keeps kafka-go's
// protocol layer for encoding: requests and responses are the types of
// github.com/segmentio/kafka-go/protocol/..., written with
// protocol.WriteRequest and read with protocol.ReadResponse.
//
// It exists because kafka-go's Transport routes requests by its own cached
// metadata, answers Metadata requests from that cache and runs one request
// at a time per connection. mq's engines need to address one broker exactly,
// see fresh metadata, and pipeline requests on a connection in order:
//
//   - [Dialer] opens a [Conn]: TCP, TLS, ApiVersions negotiation, SASL.
//   - [Conn] writes requests in the order of Send and pipelines them; Kafka
//     answers in order on a connection, so responses are matched to requests
//     by position and checked by correlation id.
//   - [Pool] keeps one connection per broker address and [Purpose], so that a
//     long fetch never delays a produce or a heartbeat. Engines depend on the
//     [Network] interface, which package wiretest fakes.
//   - [Client] is the cluster view: bootstrap, fresh metadata, coordinators.
package wire
