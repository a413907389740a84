// Package partition maps record keys to partitions the way the Java client's
// default partitioner does, so that a key lands on the same partition whichever
// client wrote it.
package partition

// Murmur2 is the 32-bit murmur2 hash used by Apache Kafka's Java client
// (org.apache.kafka.common.utils.Utils.murmur2), seed 0x9747b28c.
func Murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	n := length / 4
	for i := 0; i < n; i++ {
		i4 := i * 4
		k := uint32(data[i4]) | uint32(data[i4+1])<<8 | uint32(data[i4+2])<<16 | uint32(data[i4+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n*4:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// ForKey returns the partition the Java client's default partitioner picks for
// a non-nil key: toPositive(murmur2(key)) % numPartitions.
func ForKey(key []byte, numPartitions int) int {
	if numPartitions <= 0 {
		return 0
	}
	return int(uint32(Murmur2(key))&0x7fffffff) % numPartitions
}
