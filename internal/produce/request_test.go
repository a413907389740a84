package produce

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/protocol"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testBatch returns an encoded batch of n records for partition id of t.
func testBatch(t *testing.T, tp *topic, id int32, n int) *batch {
	t.Helper()
	p := &partition{t: tp, id: id}
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Key: []byte(fmt.Sprintf("%s/%d/%d", tp.name, id, i)), Value: []byte("v"), Time: time.Now()}
	}
	var enc encBuf
	require.NoError(t, encodeBatch(&enc, recs, CompressionSnappy, noIdentity, time.Now()))
	return &batch{p: p, recs: recs, enc: &enc}
}

// The request header kafka-go writes (v1), then the body's buffers.
func frameOf(t *testing.T, r *produceRequest, version int16) []byte {
	t.Helper()
	body, err := r.Body(version)
	require.NoError(t, err)
	var b bytes.Buffer
	hdr := binary.BigEndian.AppendUint16(nil, uint16(protocol.Produce))
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(version))
	hdr = binary.BigEndian.AppendUint32(hdr, 42)
	hdr = binary.BigEndian.AppendUint16(hdr, 2)
	hdr = append(hdr, "mq"...)
	size := len(hdr)
	for _, p := range body {
		size += len(p)
	}
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(size)))
	b.Write(hdr)
	for _, p := range body {
		b.Write(p)
	}
	return b.Bytes()
}

// A request whose batches interleave topics is grouped by topic (Kafka
// reads a request's topics as a set) and decodes, with kafka-go's own
// request decoder, to every batch's partition and records, at every version
// the engine sends.
func TestProduceRequestBody(t *testing.T) {
	a, b := &topic{name: "orders"}, &topic{name: "payments-eu"}
	for version := int16(minProduceVersion); version <= maxProduceVersion; version++ {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			batches := []*batch{testBatch(t, a, 0, 3), testBatch(t, b, 2, 1), testBatch(t, a, 5, 2), testBatch(t, b, 0, 4), testBatch(t, a, 1, 1)}
			req := &produceRequest{acks: -1, timeoutMs: 1500, batches: append([]*batch(nil), batches...)}
			groupByTopic(req.batches)
			var order []string
			for _, bt := range req.batches {
				order = append(order, fmt.Sprintf("%s/%d", bt.p.t.name, bt.p.id))
			}
			assert.Equal(t, []string{"orders/0", "orders/5", "orders/1", "payments-eu/2", "payments-eu/0"}, order,
				"grouped by topic, in order of first appearance, keeping each topic's order")

			_, corrID, clientID, msg, err := protocol.ReadRequest(bytes.NewReader(frameOf(t, req, version)))
			require.NoError(t, err)
			assert.EqualValues(t, 42, corrID)
			assert.Equal(t, "mq", clientID)
			pr, ok := msg.(*produceAPI.Request)
			require.True(t, ok, "%T", msg)
			assert.Empty(t, pr.TransactionalID)
			assert.EqualValues(t, -1, pr.Acks)
			assert.EqualValues(t, 1500, pr.Timeout)
			require.Len(t, pr.Topics, 2)
			var got []string
			for _, tp := range pr.Topics {
				for _, p := range tp.Partitions {
					for {
						r, err := p.RecordSet.Records.ReadRecord()
						if err != nil {
							break
						}
						got = append(got, fmt.Sprintf("%s[%d] %s", tp.Topic, p.Partition, readAll(t, r.Key)))
					}
				}
			}
			var want []string
			for _, bt := range req.batches {
				for _, r := range bt.recs {
					want = append(want, fmt.Sprintf("%s[%d] %s", bt.p.t.name, bt.p.id, r.Key))
				}
			}
			assert.Equal(t, want, got)
		})
	}
}

// Versions whose body differs (before v3, flexible from v9) are refused,
// not encoded wrongly.
func TestProduceRequestBodyVersions(t *testing.T) {
	req := &produceRequest{acks: 1, batches: []*batch{testBatch(t, &topic{name: "t"}, 0, 1)}}
	for _, v := range []int16{0, 2, 9, 11} {
		_, err := req.Body(v)
		assert.Error(t, err, "v%d", v)
	}
	assert.True(t, req.HasResponse())
	assert.False(t, (&produceRequest{acks: 0}).HasResponse())
}
