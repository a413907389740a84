package mq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/describegroups"
	"go.uber.org/zap"
)

// Reading and resetting a consumer group's committed offsets.

// OffsetReset says where [ResetOffsets] moves a group's committed offsets.
// Build one with [ResetToEarliest], [ResetToLatest], [ResetToTime] or
// [ResetToOffsets].
type OffsetReset struct {
	kind    resetKind
	at      time.Time
	offsets map[int]int64
}

type resetKind int

const (
	resetInvalid resetKind = iota
	resetEarliest
	resetLatest
	resetTime
	resetOffsets
)

// ResetToEarliest moves the group to the oldest record each partition
// retains: everything retained is consumed again.
func ResetToEarliest() OffsetReset { return OffsetReset{kind: resetEarliest} }

// ResetToLatest moves the group to the end of each partition: records
// written so far are skipped.
func ResetToLatest() OffsetReset { return OffsetReset{kind: resetLatest} }

// ResetToTime moves the group, in each partition, to the first record whose
// timestamp is at or after t, or to the end of the partition when there is
// none (Kafka's ListOffsets by timestamp).
func ResetToTime(t time.Time) OffsetReset { return OffsetReset{kind: resetTime, at: t} }

// ResetToOffsets moves the group to the given offset in each partition named
// (partition -> offset); other partitions keep their committed offsets. An
// offset outside what the partition retains is clamped to its oldest
// retained record or to its end, as Kafka's kafka-consumer-groups tool does,
// and the plan shows the clamped value.
func ResetToOffsets(offsets map[int]int64) OffsetReset {
	cp := make(map[int]int64, len(offsets))
	for p, o := range offsets {
		cp[p] = o
	}
	return OffsetReset{kind: resetOffsets, offsets: cp}
}

// String describes the reset, as in "earliest", "time 2026-12-01T10:00:00Z"
// or "offsets 0=1200,3=0".
func (r OffsetReset) String() string {
	switch r.kind {
	case resetEarliest:
		return "earliest"
	case resetLatest:
		return "latest"
	case resetTime:
		return "time " + r.at.Format(time.RFC3339Nano)
	case resetOffsets:
		parts := make([]int, 0, len(r.offsets))
		for p := range r.offsets {
			parts = append(parts, p)
		}
		sort.Ints(parts)
		var b strings.Builder
		b.WriteString("offsets ")
		for i, p := range parts {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d=%d", p, r.offsets[p])
		}
		return b.String()
	}
	return "invalid"
}

// PartitionReset is one partition of the plan [ResetOffsets] returns.
type PartitionReset struct {
	Partition int
	// Committed is the group's committed offset before the reset, -1 when
	// it had none.
	Committed int64
	// New is the offset the reset commits: the next record the group reads.
	New int64
}

// GroupOffset is one partition of a topic as a consumer group sees it.
type GroupOffset struct {
	Partition int
	// Committed is the group's committed offset (the next record it reads),
	// -1 when it has none.
	Committed int64
	// Start is the offset of the oldest record the partition retains.
	Start int64
	// End is the partition's high-water mark: the offset the next record
	// written will get.
	End int64
	// Lag is End - Committed: records written and not yet consumed by the
	// group. With no commit it is End - Start, what a consumer starting at
	// the earliest record (mq's default) has ahead of it.
	Lag int64
}

// GroupOffsets returns, for every partition of topic sorted by partition,
// group's committed offset, the partition's retained range and the group's
// lag. A group that never committed reports -1 everywhere. A topic that does
// not exist is an error wrapping kafka.UnknownTopicOrPartition.
func GroupOffsets(ctx context.Context, brokers []string, group, topic string, opts ...AdminOption) ([]GroupOffset, error) {
	if group == "" || topic == "" {
		return nil, invalid("group and topic must not be empty")
	}
	a, err := newAdmin(brokers, []string{topic}, opts)
	if err != nil {
		return nil, err
	}
	defer a.close()
	ids, err := a.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	committed, err := a.committed(ctx, group, topic, ids)
	if err != nil {
		return nil, err
	}
	bounds, err := a.bounds(ctx, topic, ids, time.Time{})
	if err != nil {
		return nil, err
	}
	out := make([]GroupOffset, 0, len(ids))
	for _, id := range ids {
		g := GroupOffset{Partition: id, Committed: committed[id], Start: bounds[id].start, End: bounds[id].end}
		if g.Committed >= 0 {
			g.Lag = g.End - g.Committed
		} else {
			g.Lag = g.End - g.Start
		}
		out = append(out, g)
	}
	return out, nil
}

// ResetOffsets moves group's committed offsets for topic (every partition,
// or those of [WithResetPartitions]) to where to says, and returns the plan:
// per partition, the committed offset before and the new one.
//
// Like Kafka's kafka-consumer-groups --reset-offsets, it refuses with an
// [*ActiveGroupError] while the group has members, since a running consumer
// would commit its own positions over the reset. Stop the group's consumers
// first, or use [WithResetForce] to remove members that are gone but not
// yet expired. With [WithResetDryRun] it returns the plan and commits
// nothing.
//
// The plan is returned whenever it could be computed, also along with an
// error, so that a refused or dry run shows what would change; offsets were
// committed only when the error is nil and it was not a dry run. The next
// consumer of the group starts at the new offsets.
func ResetOffsets(ctx context.Context, brokers []string, group, topic string, to OffsetReset, opts ...AdminOption) ([]PartitionReset, error) {
	if group == "" || topic == "" {
		return nil, invalid("group and topic must not be empty")
	}
	switch to.kind {
	case resetEarliest, resetLatest:
	case resetTime:
		if to.at.UnixMilli() < 0 {
			return nil, invalid("reset time %v is before 1970", to.at)
		}
	case resetOffsets:
		if len(to.offsets) == 0 {
			return nil, invalid("reset to offsets: no partition named")
		}
	default:
		return nil, invalid("unknown offset reset (build one with ResetToEarliest, ResetToLatest, ResetToTime or ResetToOffsets)")
	}
	a, err := newAdmin(brokers, []string{topic}, opts)
	if err != nil {
		return nil, err
	}
	defer a.close()
	if to.kind == resetOffsets && a.cfg.resetPartitions != nil {
		return nil, invalid("WithResetPartitions cannot be combined with ResetToOffsets, which names its partitions")
	}
	log := a.log.With(zap.String("group", group), zap.String("topic", topic), zap.Stringer("to", to))

	all, err := a.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	ids := all
	switch {
	case to.kind == resetOffsets:
		ids = ids[:0:0]
		for p := range to.offsets {
			ids = append(ids, p)
		}
		sort.Ints(ids)
	case a.cfg.resetPartitions != nil:
		ids = append([]int(nil), a.cfg.resetPartitions...)
		sort.Ints(ids)
		ids = slices.Compact(ids)
	}
	for _, id := range ids {
		if !slices.Contains(all, id) {
			return nil, invalid("topic %q has no partition %d (it has %d)", topic, id, len(all))
		}
	}
	if len(ids) == 0 {
		return nil, invalid("no partition to reset")
	}

	state, members, err := a.describeGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	committed, err := a.committed(ctx, group, topic, ids)
	if err != nil {
		return nil, err
	}
	bounds, err := a.bounds(ctx, topic, ids, to.at)
	if err != nil {
		return nil, err
	}
	plan := make([]PartitionReset, 0, len(ids))
	for _, id := range ids {
		b := bounds[id]
		next := b.start
		switch to.kind {
		case resetLatest:
			next = b.end
		case resetTime:
			next = b.atTime
		case resetOffsets:
			next = min(max(to.offsets[id], b.start), b.end)
		}
		plan = append(plan, PartitionReset{Partition: id, Committed: committed[id], New: next})
	}

	if groupActive(state) && !a.cfg.resetForce {
		return plan, &ActiveGroupError{Group: group, State: state, Members: len(members)}
	}
	if a.cfg.resetDryRun {
		log.Info("offset reset planned (dry run)", zap.Any("plan", plan))
		return plan, nil
	}
	if groupActive(state) {
		log.Warn("removing the group's members before resetting its offsets (forced)", zap.String("state", state),
			zap.Int("members", len(members)))
		if err := a.removeMembers(ctx, group, members); err != nil {
			return plan, err
		}
	}
	if err := a.commit(ctx, group, topic, plan); err != nil {
		return plan, err
	}
	log.Info("offsets reset", zap.Any("plan", plan))
	return plan, nil
}

// partitions returns topic's partition IDs, sorted, from fresh metadata.
func (a *admin) partitions(ctx context.Context, topic string) ([]int, error) {
	md, err := a.freshMetadata(ctx, nil, []string{topic})
	if err != nil {
		return nil, fmt.Errorf("mq: topic %q: %w", topic, err)
	}
	t, ok := findTopic(md, topic)
	if !ok {
		return nil, fmt.Errorf("mq: topic %q: %w", topic, kafka.UnknownTopicOrPartition)
	}
	if t.Error != nil {
		return nil, fmt.Errorf("mq: topic %q: %w", topic, t.Error)
	}
	ids := make([]int, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		ids = append(ids, p.ID)
	}
	sort.Ints(ids)
	return ids, nil
}

// committed returns group's committed offsets of topic's partitions ids, -1
// where it has none.
func (a *admin) committed(ctx context.Context, group, topic string, ids []int) (map[int]int64, error) {
	out := make(map[int]int64, len(ids))
	err := withCoordinator(ctx, func(ctx context.Context) error {
		for _, id := range ids {
			out[id] = -1
		}
		resp, err := a.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
		if err != nil {
			return fmt.Errorf("mq: committed offsets of group %q: %w", group, authError(err))
		}
		if errors.Is(resp.Error, kafka.GroupIdNotFound) {
			return nil // some brokers (kfake) answer so for a group that never committed
		}
		if resp.Error != nil {
			return fmt.Errorf("mq: committed offsets of group %q: %w", group, resp.Error)
		}
		for _, p := range resp.Topics[topic] {
			if p.Error != nil {
				return fmt.Errorf("mq: committed offset of group %q on %s[%d]: %w", group, topic, p.Partition, p.Error)
			}
			if p.CommittedOffset >= 0 {
				out[p.Partition] = p.CommittedOffset
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// withCoordinator calls fn until it returns nil or an error other than a
// group coordinator that is not ready, within ctx and topicWaitTimeout. The
// first requests about a group can meet a coordinator still loading its
// state, or on a new cluster an offsets topic still being created (kafka-go
// then sends the request to a broker that is not the coordinator).
func withCoordinator(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, topicWaitTimeout)
	defer cancel()
	for backoff := 20 * time.Millisecond; ; backoff = min(2*backoff, 500*time.Millisecond) {
		err := fn(ctx)
		if err == nil || !coordinatorNotReady(err) || !sleepCtx(ctx, backoff) {
			return err
		}
	}
}

func coordinatorNotReady(err error) bool {
	return errors.Is(err, kafka.NotCoordinatorForGroup) || errors.Is(err, kafka.GroupCoordinatorNotAvailable) ||
		errors.Is(err, kafka.GroupLoadInProgress)
}

// partitionBounds are a partition's retained range, and the offset a reset
// to a time moves to.
type partitionBounds struct {
	start, end int64
	atTime     int64
}

// bounds lists the start and end offsets of topic's partitions ids and, for
// a non-zero at, the first offset at or after at (the end when none).
func (a *admin) bounds(ctx context.Context, topic string, ids []int, at time.Time) (map[int]partitionBounds, error) {
	reqs := make([]kafka.OffsetRequest, 0, 3*len(ids))
	for _, id := range ids {
		reqs = append(reqs, kafka.FirstOffsetOf(id), kafka.LastOffsetOf(id))
		if !at.IsZero() {
			reqs = append(reqs, kafka.TimeOffsetOf(id, at))
		}
	}
	resp, err := a.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("mq: offsets of topic %q: %w", topic, authError(err))
	}
	out := make(map[int]partitionBounds, len(ids))
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("mq: offsets of %s[%d]: %w", topic, po.Partition, po.Error)
		}
		b := partitionBounds{start: po.FirstOffset, end: po.LastOffset, atTime: po.LastOffset}
		// kafka-go files the answer to a time query under the offset found,
		// -1 when no record is at or after the time.
		for off := range po.Offsets {
			if off >= 0 {
				b.atTime = off
			}
		}
		out[po.Partition] = b
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("mq: offsets of topic %q: no answer for partition %d", topic, id)
		}
	}
	return out, nil
}

// groupMember identifies a member for LeaveGroup.
type groupMember struct {
	id, instanceID string
}

// describeGroup returns group's state as its coordinator reports it ("" for
// a group it does not know) and its members. It uses the protocol request
// directly: kafka-go's Client.DescribeGroups drops the members when it
// cannot decode their subscription metadata.
func (a *admin) describeGroup(ctx context.Context, group string) (state string, members []groupMember, err error) {
	err = withCoordinator(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, adminRequestTimeout)
		defer cancel()
		m, err := a.tr.RoundTrip(ctx, kafka.TCP(a.addrs...), &describegroups.Request{Groups: []string{group}})
		if err != nil {
			return fmt.Errorf("mq: describe group %q: %w", group, authError(err))
		}
		resp, ok := m.(*describegroups.Response)
		if !ok {
			return fmt.Errorf("mq: describe group %q: unexpected response %T", group, m)
		}
		state, members = "", nil
		for _, g := range resp.Groups {
			if g.GroupID != group || g.ErrorCode == int16(kafka.GroupIdNotFound) {
				continue
			}
			if g.ErrorCode != 0 {
				return fmt.Errorf("mq: describe group %q: %w", group, kafka.Error(g.ErrorCode))
			}
			state = g.GroupState
			for _, mb := range g.Members {
				members = append(members, groupMember{id: mb.MemberID, instanceID: mb.GroupInstanceID})
			}
		}
		return nil
	})
	return state, members, err
}

// groupActive reports whether a group in state may have members that commit
// offsets (Kafka's tool accepts only Empty and Dead).
func groupActive(state string) bool {
	switch state {
	case "", "Empty", "Dead":
		return false
	}
	return true
}

// removeMembers makes the coordinator remove members from group (LeaveGroup
// on their behalf, KIP-345/KIP-571), then waits for the group to be empty.
func (a *admin) removeMembers(ctx context.Context, group string, members []groupMember) error {
	if len(members) > 0 {
		req := &kafka.LeaveGroupRequest{GroupID: group}
		for _, m := range members {
			req.Members = append(req.Members, kafka.LeaveGroupRequestMember{ID: m.id, GroupInstanceID: m.instanceID})
		}
		err := withCoordinator(ctx, func(ctx context.Context) error {
			resp, err := a.client.LeaveGroup(ctx, req)
			if err != nil {
				return fmt.Errorf("mq: remove members of group %q: %w", group, authError(err))
			}
			if resp.Error != nil && !errors.Is(resp.Error, kafka.UnknownMemberId) {
				return fmt.Errorf("mq: remove members of group %q: %w", group, resp.Error)
			}
			for _, m := range resp.Members {
				if m.Error != nil && !errors.Is(m.Error, kafka.UnknownMemberId) { // already gone is fine
					return fmt.Errorf("mq: remove member %q of group %q: %w", m.ID, group, m.Error)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, topicWaitTimeout)
	defer cancel()
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 250*time.Millisecond) {
		state, members, err := a.describeGroup(ctx, group)
		if err != nil {
			return err
		}
		if !groupActive(state) {
			return nil
		}
		if !sleepCtx(ctx, backoff) {
			return fmt.Errorf("%w (after removing its members: %w)",
				&ActiveGroupError{Group: group, State: state, Members: len(members)}, ctx.Err())
		}
	}
}

// commit commits the plan's new offsets from outside the group (generation
// -1), which brokers accept only while the group is empty.
func (a *admin) commit(ctx context.Context, group, topic string, plan []PartitionReset) error {
	offs := make([]kafka.OffsetCommit, 0, len(plan))
	for _, p := range plan {
		offs = append(offs, kafka.OffsetCommit{Partition: p.Partition, Offset: p.New})
	}
	var resp *kafka.OffsetCommitResponse
	err := withCoordinator(ctx, func(ctx context.Context) error {
		var err error
		resp, err = a.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1,
			Topics: map[string][]kafka.OffsetCommit{topic: offs}})
		if err != nil {
			return fmt.Errorf("mq: commit offsets of group %q: %w", group, authError(err))
		}
		for _, p := range resp.Topics[topic] {
			if coordinatorNotReady(p.Error) {
				return fmt.Errorf("mq: commit offsets of group %q: %w", group, p.Error)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range resp.Topics[topic] {
		if p.Error == nil {
			continue
		}
		if errors.Is(p.Error, kafka.UnknownMemberId) || errors.Is(p.Error, kafka.RebalanceInProgress) ||
			errors.Is(p.Error, kafka.IllegalGeneration) {
			// Members (re)joined since the check: the broker refuses
			// commits from outside the group.
			state, members, derr := a.describeGroup(ctx, group)
			if derr != nil {
				return fmt.Errorf("mq: commit offsets of group %q: %w", group, p.Error)
			}
			return fmt.Errorf("%w: %w", &ActiveGroupError{Group: group, State: state, Members: len(members)}, p.Error)
		}
		return fmt.Errorf("mq: commit offset of group %q on %s[%d]: %w", group, topic, p.Partition, p.Error)
	}
	return nil
}
