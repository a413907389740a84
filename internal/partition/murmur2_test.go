package partition

import (
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
)

// Vectors from Apache Kafka's UtilsTest.testMurmur2 (clients module).
func TestMurmur2JavaVectors(t *testing.T) {
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for in, want := range cases {
		assert.Equal(t, want, Murmur2([]byte(in)), in)
	}
}

// kafka-go's Murmur2Balancer documents Java compatibility; we must agree with it.
func TestForKeyMatchesKafkaGoMurmur2Balancer(t *testing.T) {
	b := kafka.Murmur2Balancer{}
	for _, n := range []int{1, 3, 12, 100} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for i := 0; i < 500; i++ {
			key := []byte{byte(i), byte(i >> 8), 'k', byte(i * 7)}
			assert.Equal(t, b.Balance(kafka.Message{Key: key}, parts...), ForKey(key, n))
		}
	}
}
