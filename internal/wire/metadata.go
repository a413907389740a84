package wire

import (
	"net"
	"sort"
	"strconv"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
)

// Metadata is a cluster's layout as one broker described it.
type Metadata struct {
	// Brokers are the live brokers by node ID.
	Brokers map[int32]Broker
	// Topics are the requested topics (all of them when none were named),
	// each with its error.
	Topics       map[string]TopicMetadata
	ControllerID int32
	ClusterID    string
}

// Broker is a broker's node ID and the address to dial it at.
type Broker struct {
	ID   int32
	Addr string // "host:port"
	Rack string
}

// TopicMetadata is one topic's layout. Err is nil or a kafka.Error (for
// instance kafka.UnknownTopicOrPartition), so errors.Is works.
type TopicMetadata struct {
	Name       string
	Err        error
	Internal   bool
	Partitions []PartitionMetadata // by ascending ID
}

// PartitionMetadata is one partition's layout. Leader is -1 when the
// partition has none; LeaderEpoch is -1 when the broker's Metadata version
// (below v7) does not carry it. Err is nil or a kafka.Error (for instance
// kafka.LeaderNotAvailable).
type PartitionMetadata struct {
	ID          int32
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
	Err         error
}

// makeMetadata converts kafka-go's Metadata response of version v.
func makeMetadata(res *metadata.Response, v int16) *Metadata {
	m := &Metadata{
		Brokers:      make(map[int32]Broker, len(res.Brokers)),
		Topics:       make(map[string]TopicMetadata, len(res.Topics)),
		ControllerID: res.ControllerID,
		ClusterID:    res.ClusterID,
	}
	for _, b := range res.Brokers {
		m.Brokers[b.NodeID] = Broker{
			ID:   b.NodeID,
			Addr: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))),
			Rack: b.Rack,
		}
	}
	for _, t := range res.Topics {
		tm := TopicMetadata{
			Name:       t.Name,
			Err:        kafkaError(t.ErrorCode),
			Internal:   t.IsInternal,
			Partitions: make([]PartitionMetadata, 0, len(t.Partitions)),
		}
		for _, p := range t.Partitions {
			epoch := int32(-1)
			if v >= 7 {
				epoch = p.LeaderEpoch
			}
			tm.Partitions = append(tm.Partitions, PartitionMetadata{
				ID:          p.PartitionIndex,
				Leader:      p.LeaderID,
				LeaderEpoch: epoch,
				Replicas:    p.ReplicaNodes,
				ISR:         p.IsrNodes,
				Err:         kafkaError(p.ErrorCode),
			})
		}
		sort.Slice(tm.Partitions, func(i, j int) bool { return tm.Partitions[i].ID < tm.Partitions[j].ID })
		m.Topics[t.Name] = tm
	}
	return m
}

// kafkaError returns the kafka.Error of a non-zero code, and nil for zero.
func kafkaError(code int16) error {
	if code == 0 {
		return nil
	}
	return kafka.Error(code)
}
