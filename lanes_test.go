package mq

import (
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
)

// Keys that the partitioner put on one partition must still spread over the
// lanes: the lane hash must not be correlated with the partition hash.
func TestLaneHashSpreadsKeysOfOnePartition(t *testing.T) {
	const partitions, lanes = 12, 8
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	used := map[uint32]int{}
	keys := 0
	for i := 0; keys < 400; i++ {
		k := []byte(fmt.Sprintf("conv-%d", i))
		if (kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: k}, parts...) != 3 {
			continue
		}
		keys++
		used[fnv1a(k)%lanes]++
	}
	if len(used) != lanes {
		t.Fatalf("keys of one partition reach %d of %d lanes: %v", len(used), lanes, used)
	}
	for lane, n := range used {
		if n < keys/lanes/2 {
			t.Errorf("lane %d gets %d of %d keys", lane, n, keys)
		}
	}
}
