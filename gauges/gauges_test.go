package gauges

import (
	"testing"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/assert"
)

type fakeConsumer mq.ConsumerStats

func (f fakeConsumer) Stats() mq.ConsumerStats { return mq.ConsumerStats(f) }

type fakeProducer struct {
	topic    string
	buffered int64
}

func (f fakeProducer) Topic() string           { return f.topic }
func (f fakeProducer) Stats() mq.ProducerStats { return mq.ProducerStats{Buffered: f.buffered} }

func TestPartitionsAggregate(t *testing.T) {
	a := fakeConsumer{Partitions: []mq.PartitionStats{{Topic: "t", Partition: 0, Lag: 5, InFlight: 1}, {Topic: "t", Partition: 1, Lag: 2}}}
	b := fakeConsumer{Partitions: []mq.PartitionStats{{Topic: "t", Partition: 0, Lag: 7, InFlight: 2}}}
	other := fakeConsumer{Partitions: []mq.PartitionStats{{Topic: "t", Partition: 0, Lag: 1}}}
	got := Partitions([]Consumer{{"g", a}, {"g", b}, {"h", other}})
	assert.Equal(t, []Partition{
		{Topic: "t", Group: "g", Partition: 0, Lag: 7, InFlight: 3},
		{Topic: "t", Group: "g", Partition: 1, Lag: 2},
		{Topic: "t", Group: "h", Partition: 0, Lag: 1},
	}, got)
	assert.Empty(t, Partitions(nil))
}

func TestTopicsSum(t *testing.T) {
	got := Topics([]Producer{fakeProducer{"a", 2}, fakeProducer{"b", 1}, fakeProducer{"a", 3}})
	assert.Equal(t, []Topic{{"a", 5}, {"b", 1}}, got)
}

func TestRegistryHooksAndSnapshot(t *testing.T) {
	firsts, empties := 0, 0
	r := &Registry{OnFirst: func() error { firsts++; return nil }, OnEmpty: func() { empties++ }}
	rmC, err := r.AddConsumer(Consumer{"g", fakeConsumer{Partitions: []mq.PartitionStats{{Topic: "t", Lag: 4}}}})
	assert.NoError(t, err)
	rmP, err := r.AddProducer(fakeProducer{"t", 2})
	assert.NoError(t, err)
	parts, topics := r.Snapshot()
	assert.Equal(t, []Partition{{Topic: "t", Group: "g", Lag: 4}}, parts)
	assert.Equal(t, []Topic{{"t", 2}}, topics)
	rmC()
	rmC() // idempotent
	assert.Zero(t, empties)
	rmP()
	assert.Equal(t, 1, firsts)
	assert.Equal(t, 1, empties)
	parts, topics = r.Snapshot()
	assert.Empty(t, parts)
	assert.Empty(t, topics)
}
