package produce

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go/protocol"
)

// produceRequest is a produce request of encoded batches. It encodes its
// own body ([wire.Vectored]): on a TCP connection the batches leave as
// they are, in one vectored write with the few bytes around them, instead
// of being copied into a request buffer (kafka-go's encoder copied each request twice, a
// tenth of the producer's CPU in benchmarks). Its response is kafka-go's
// produce response, decoded by API key.
type produceRequest struct {
	acks      int16
	timeoutMs int32
	batches   []*batch // grouped by topic: Kafka reads a request's topics as a set
}

var _ wire.Vectored = (*produceRequest)(nil)

// ApiKey implements protocol.Message.
func (r *produceRequest) ApiKey() protocol.ApiKey { return protocol.Produce }

// HasResponse reports whether the broker answers: not with acks 0.
func (r *produceRequest) HasResponse() bool { return r.acks != 0 }

// Produce versions whose body this encodes: v3 brought transactional_id
// and v2 record batches, v9 flexible encoding.
const (
	minProduceVersion = 3
	maxProduceVersion = 8
)

// Body implements [wire.Vectored]: transactional_id (null), acks,
// timeout_ms, then the topics and their partitions, each partition's
// records field being a batch's encoded bytes (size prefix included).
func (r *produceRequest) Body(version int16) (net.Buffers, error) {
	if version < minProduceVersion || version > maxProduceVersion {
		return nil, fmt.Errorf("produce v%d: record batches are encoded for v%d to v%d", version, minProduceVersion, maxProduceVersion)
	}
	// Every byte outside the batches goes into one array, sized first so
	// that the slices taken from it stay valid.
	n := 2 + 2 + 4 + 4
	for i, b := range r.batches {
		if i == 0 || b.p.t != r.batches[i-1].p.t {
			if len(b.p.t.name) > math.MaxInt16 {
				return nil, fmt.Errorf("topic name of %d bytes", len(b.p.t.name))
			}
			n += 2 + len(b.p.t.name) + 4
		}
		n += 4
	}
	be := binary.BigEndian
	head := make([]byte, 0, n)
	head = be.AppendUint16(head, 0xffff) // transactional_id: null
	head = be.AppendUint16(head, uint16(r.acks))
	head = be.AppendUint32(head, uint32(r.timeoutMs))
	head = be.AppendUint32(head, uint32(countTopics(r.batches)))
	bufs := make(net.Buffers, 0, 2*len(r.batches)+1)
	from := 0
	for i, b := range r.batches {
		if i == 0 || b.p.t != r.batches[i-1].p.t {
			head = be.AppendUint16(head, uint16(len(b.p.t.name)))
			head = append(head, b.p.t.name...)
			head = be.AppendUint32(head, uint32(countPartitions(r.batches[i:])))
		}
		head = be.AppendUint32(head, uint32(b.p.id))
		bufs = append(bufs, head[from:], b.enc.out)
		from = len(head)
	}
	return bufs, nil
}

// countTopics returns the number of topics of batches grouped by topic.
func countTopics(batches []*batch) int {
	n := 0
	for i, b := range batches {
		if i == 0 || b.p.t != batches[i-1].p.t {
			n++
		}
	}
	return n
}

// countPartitions returns the number of leading batches of batches[0]'s
// topic.
func countPartitions(batches []*batch) int {
	n := 0
	for n < len(batches) && batches[n].p.t == batches[0].p.t {
		n++
	}
	return n
}
