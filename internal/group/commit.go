package group

import (
	"context"
	"fmt"
	"slices"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/offsetcommit"
	"github.com/segmentio/kafka-go/protocol/offsetfetch"
)

// Commit commits offsets (the next offset to read, per partition) through
// gen: the coordinator accepts them only from a member of that generation
// (while the group is stable or preparing a rebalance), so a member that
// lost its partitions cannot overwrite their new owner's offsets. A
// partition error fails the whole call with the first one (a kafka.Error);
// a coordinator that moved is found again by the next request.
func (m *Membership) Commit(ctx context.Context, gen *Generation, offsets map[TopicPartition]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	conn, err := m.conn(ctx)
	if err != nil {
		return err
	}
	req := &offsetcommit.Request{GroupID: m.cfg.Group, GenerationID: gen.ID, MemberID: gen.MemberID,
		GroupInstanceID: m.cfg.InstanceID, RetentionTimeMs: -1}
	byTopic := make(map[string][]offsetcommit.RequestPartition)
	var topics []string
	for tp, off := range offsets {
		if _, ok := byTopic[tp.Topic]; !ok {
			topics = append(topics, tp.Topic)
		}
		byTopic[tp.Topic] = append(byTopic[tp.Topic], offsetcommit.RequestPartition{
			PartitionIndex: tp.Partition, CommittedOffset: off, CommittedLeaderEpoch: -1, CommitTimestamp: -1})
	}
	slices.Sort(topics)
	for _, t := range topics {
		req.Topics = append(req.Topics, offsetcommit.RequestTopic{Name: t, Partitions: byTopic[t]})
	}
	msg, err := m.roundTrip(ctx, conn, req, offsetCommitVersion)
	if err != nil {
		return fmt.Errorf("group %q: commit: %w", m.cfg.Group, err)
	}
	for _, t := range msg.(*offsetcommit.Response).Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return fmt.Errorf("%s[%d]: %w", t.Name, p.PartitionIndex,
					m.groupError(conn.Addr(), "commit", p.ErrorCode))
			}
		}
	}
	return nil
}

// FetchOffsets returns the group's committed offsets of parts; a partition
// without one maps to -1.
func (m *Membership) FetchOffsets(ctx context.Context, parts []TopicPartition) (map[TopicPartition]int64, error) {
	out := make(map[TopicPartition]int64, len(parts))
	if len(parts) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	conn, err := m.conn(ctx)
	if err != nil {
		return nil, err
	}
	req := &offsetfetch.Request{GroupID: m.cfg.Group}
	idx := make(map[string]int)
	for _, tp := range parts {
		i, ok := idx[tp.Topic]
		if !ok {
			i = len(req.Topics)
			idx[tp.Topic] = i
			req.Topics = append(req.Topics, offsetfetch.RequestTopic{Name: tp.Topic})
		}
		req.Topics[i].PartitionIndexes = append(req.Topics[i].PartitionIndexes, tp.Partition)
	}
	msg, err := m.roundTrip(ctx, conn, req, offsetFetchVersion)
	if err != nil {
		return nil, fmt.Errorf("group %q: fetching offsets: %w", m.cfg.Group, err)
	}
	res := msg.(*offsetfetch.Response)
	if res.ErrorCode != 0 {
		return nil, m.groupError(conn.Addr(), "fetching offsets", res.ErrorCode)
	}
	for _, t := range res.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 && kafka.Error(p.ErrorCode) != kafka.UnknownTopicOrPartition {
				return nil, fmt.Errorf("%s[%d]: %w", t.Name, p.PartitionIndex,
					m.groupError(conn.Addr(), "fetching offsets", p.ErrorCode))
			}
			off := p.CommittedOffset
			if p.ErrorCode != 0 || off < 0 {
				off = -1
			}
			out[TopicPartition{t.Name, p.PartitionIndex}] = off
		}
	}
	for _, tp := range parts {
		if _, ok := out[tp]; !ok {
			out[tp] = -1
		}
	}
	return out, nil
}
