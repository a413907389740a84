package group

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/joingroup"
	"github.com/segmentio/kafka-go/protocol/syncgroup"
	"go.uber.org/zap"
)

// Versions the member speaks. Above them kafka-go's types are wrong (the
// flexible SyncGroup v5, Heartbeat v4) or need fields it lacks; these carry
// everything the member needs: MEMBER_ID_REQUIRED (JoinGroup v4+), static
// membership (JoinGroup v5, SyncGroup v3, Heartbeat v3, LeaveGroup v3,
// OffsetCommit v7).
const (
	joinGroupVersion    = 5
	syncGroupVersion    = 3
	heartbeatVersion    = 3
	leaveGroupVersion   = 3
	offsetCommitVersion = 7
	offsetFetchVersion  = 5
)

// Join joins the group (JoinGroup, then SyncGroup) and returns the new
// generation. owned and ownedGen go into the subscription: the partitions
// the member still holds (cooperative) and the generation it got them in
// (NoGeneration for none). Membership churn (MEMBER_ID_REQUIRED, a
// rebalance starting again, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION) is
// handled here; any other error, including a coordinator that moved or a
// broken connection, is returned for the caller to back off and call again.
// The previous generation, if still running, ends with [ErrRebalance].
func (m *Membership) Join(ctx context.Context, owned []TopicPartition, ownedGen int32) (*Generation, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrMemberClosed
	}
	if m.gen != nil {
		m.gen.end(ErrRebalance)
	}
	m.joining = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.joining = false
		m.mu.Unlock()
	}()
	for {
		gen, err := m.joinOnce(ctx, owned, ownedGen)
		if err == nil {
			m.mu.Lock()
			if m.closed {
				m.mu.Unlock()
				gen.end(ErrMemberClosed)
				return nil, ErrMemberClosed
			}
			m.gen = gen
			m.mu.Unlock()
			m.hbOnce.Do(func() { go m.heartbeatLoop() })
			return gen, nil
		}
		var kerr kafka.Error
		if !errors.As(err, &kerr) {
			return nil, err
		}
		switch kerr {
		case kafka.MemberIDRequired, kafka.RebalanceInProgress, kafka.IllegalGeneration:
			// rejoin at once (the member ID, if new, is already kept)
		case kafka.UnknownMemberId:
			m.mu.Lock()
			m.memberID = ""
			m.mu.Unlock()
		default:
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.log.Debug("rejoining the group", zap.Error(err))
	}
}

// subscription is the member's metadata for one assignor.
func (m *Membership) subscription(a Assignor, owned []TopicPartition, ownedGen int32) ([]byte, error) {
	topics := slices.Clone(m.cfg.Topics)
	slices.Sort(topics)
	sub := Subscription{Topics: topics, OwnedPartitions: owned, GenerationID: ownedGen, RackID: m.cfg.Rack}
	if a.Name() == CooperativeSticky().Name() {
		// What Java's CooperativeStickyAssignor sends as user data.
		sub.UserData = CooperativeStickyUserData(ownedGen)
	} else if u, ok := a.(interface{ UserData() ([]byte, error) }); ok {
		b, err := u.UserData()
		if err != nil {
			return nil, fmt.Errorf("group %q: %s user data: %w", m.cfg.Group, a.Name(), err)
		}
		sub.UserData = b
	}
	version := MaxVersion
	if a.Name() != CooperativeSticky().Name() && m.cfg.Rack == "" && len(owned) == 0 {
		// An eager assignor reads neither owned partitions nor generation,
		// and without a rack version 0 says everything. kafka-go's leader
		// (mq before its own membership, met in a rolling upgrade) reads
		// only version 0's fields and refuses anything longer; Java reads
		// every version.
		version = 0
	}
	return EncodeSubscription(sub, version)
}

func (m *Membership) joinOnce(ctx context.Context, owned []TopicPartition, ownedGen int32) (*Generation, error) {
	conn, err := m.conn(ctx)
	if err != nil {
		return nil, err
	}
	req := &joingroup.Request{
		GroupID:            m.cfg.Group,
		SessionTimeoutMS:   int32(m.cfg.SessionTimeout.Milliseconds()),
		RebalanceTimeoutMS: int32(m.cfg.RebalanceTimeout.Milliseconds()),
		MemberID:           m.MemberID(),
		GroupInstanceID:    m.cfg.InstanceID,
		ProtocolType:       ProtocolType,
	}
	for _, a := range m.cfg.Assignors {
		md, err := m.subscription(a, owned, ownedGen)
		if err != nil {
			return nil, err
		}
		req.Protocols = append(req.Protocols, joingroup.RequestProtocol{Name: a.Name(), Metadata: md})
	}
	// The coordinator holds JoinGroup until every member rejoined or the
	// rebalance timeout passed.
	jctx, cancel := context.WithTimeout(ctx, m.cfg.RebalanceTimeout+m.cfg.RequestTimeout)
	defer cancel()
	msg, err := m.roundTrip(jctx, conn, req, joinGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("group %q: join: %w", m.cfg.Group, err)
	}
	res := msg.(*joingroup.Response)
	if res.MemberID != "" {
		m.mu.Lock()
		m.memberID = res.MemberID
		m.mu.Unlock()
	}
	if res.ErrorCode != 0 {
		return nil, m.groupError(conn.Addr(), "join", res.ErrorCode)
	}

	var assignor Assignor
	for _, a := range m.cfg.Assignors {
		if a.Name() == res.ProtocolName {
			assignor = a
		}
	}
	if assignor == nil {
		return nil, fmt.Errorf("group %q: the coordinator chose protocol %q, which this member did not offer", m.cfg.Group, res.ProtocolName)
	}
	gen := &Generation{ID: res.GenerationID, MemberID: res.MemberID, Protocol: res.ProtocolName,
		Cooperative: res.ProtocolName == CooperativeSticky().Name(), Leader: res.LeaderID == res.MemberID}

	sreq := &syncgroup.Request{GroupID: m.cfg.Group, GenerationID: res.GenerationID, MemberID: res.MemberID,
		GroupInstanceID: m.cfg.InstanceID}
	if gen.Leader {
		assignments, counts, err := m.assign(ctx, assignor, res.Members)
		if err != nil {
			return nil, err
		}
		gen.counts = counts
		for _, mem := range res.Members {
			a := assignments[mem.MemberID]
			b, err := EncodeAssignment(a, MaxVersion)
			if err != nil {
				return nil, err
			}
			sreq.Assignments = append(sreq.Assignments, syncgroup.RequestAssignment{MemberID: mem.MemberID, Assignment: b})
		}
	}
	sctx, scancel := context.WithTimeout(ctx, m.cfg.RebalanceTimeout+m.cfg.RequestTimeout)
	defer scancel()
	smsg, err := m.roundTrip(sctx, conn, sreq, syncGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("group %q: sync: %w", m.cfg.Group, err)
	}
	sres := smsg.(*syncgroup.Response)
	if sres.ErrorCode != 0 {
		return nil, m.groupError(conn.Addr(), "sync", sres.ErrorCode)
	}
	if len(sres.Assignments) > 0 {
		a, _, err := DecodeAssignment(sres.Assignments)
		if err != nil {
			return nil, fmt.Errorf("group %q: the leader's assignment: %w", m.cfg.Group, err)
		}
		gen.Assigned = a.Partitions
	}
	gen.ctx, gen.cancel = context.WithCancelCause(context.Background())
	m.log.Info("joined the group", zap.Int32("generation", gen.ID),
		zap.String("member", gen.MemberID), zap.String("protocol", gen.Protocol), zap.Bool("leader", gen.Leader),
		zap.Int("partitions", len(gen.Assigned)))
	return gen, nil
}

// assign runs the chosen assignor over the members' subscriptions, as the
// leader. It returns the partition counts it assigned from, which the
// heartbeat loop watches.
func (m *Membership) assign(ctx context.Context, a Assignor, members []joingroup.ResponseMember) (map[string]Assignment, map[string]int32, error) {
	in := make([]Member, 0, len(members))
	var topics []string
	for _, mem := range members {
		sub, err := decodeMemberSubscription(mem.Metadata)
		if err != nil {
			return nil, nil, fmt.Errorf("group %q: subscription of member %s: %w", m.cfg.Group, mem.MemberID, err)
		}
		in = append(in, Member{ID: mem.MemberID, InstanceID: mem.GroupInstanceID, Subscription: sub})
		for _, t := range sub.Topics {
			if !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	}
	md, counts, err := m.metadata(ctx, topics)
	if err != nil {
		return nil, nil, err
	}
	out, err := a.Assign(in, md)
	if err != nil {
		return nil, nil, fmt.Errorf("group %q: %s assignor: %w", m.cfg.Group, a.Name(), err)
	}
	return out, counts, nil
}

// metadata reads the partition counts and replica racks of topics.
func (m *Membership) metadata(ctx context.Context, topics []string) (Metadata, map[string]int32, error) {
	md := Metadata{Partitions: make(map[string]int32), ReplicaRacks: make(map[TopicPartition][]string)}
	counts := make(map[string]int32, len(topics))
	if len(topics) == 0 {
		return md, counts, nil
	}
	cm, err := m.cfg.Client.Metadata(ctx, topics)
	if err != nil {
		return md, nil, fmt.Errorf("group %q: metadata: %w", m.cfg.Group, err)
	}
	for _, t := range topics {
		tm, ok := cm.Topics[t]
		if !ok || tm.Err != nil {
			counts[t] = 0
			continue
		}
		counts[t] = int32(len(tm.Partitions))
		md.Partitions[t] = int32(len(tm.Partitions))
		for _, p := range tm.Partitions {
			var racks []string
			for _, r := range p.Replicas {
				if b, ok := cm.Brokers[r]; ok && b.Rack != "" {
					racks = append(racks, b.Rack)
				}
			}
			if len(racks) > 0 {
				md.ReplicaRacks[TopicPartition{t, p.ID}] = racks
			}
		}
	}
	return md, counts, nil
}

// groupError turns a group error code into a kafka.Error, forgetting the
// coordinator when it moved.
func (m *Membership) groupError(addr, op string, code int16) error {
	kerr := kafka.Error(code)
	switch kerr {
	case kafka.NotCoordinatorForGroup, kafka.GroupCoordinatorNotAvailable:
		m.coordinatorGone(addr)
	}
	return fmt.Errorf("group %q: %s: %w", m.cfg.Group, op, kerr)
}

// decodeMemberSubscription is DecodeSubscription, lenient with kafka-go's
// subscription (what mq members sent before mq had its own membership):
// kafka-go labels it version 1 but leaves out the owned partitions that
// version has. Java rejects it; a leader met by such members in a rolling
// upgrade reads its version-0 fields (topics, user data) instead.
func decodeMemberSubscription(b []byte) (Subscription, error) {
	sub, _, err := DecodeSubscription(b)
	if err == nil || len(b) < 2 || !errors.Is(err, ErrMalformed) {
		return sub, err
	}
	v0 := append([]byte{0, 0}, b[2:]...)
	if sub0, _, err0 := DecodeSubscription(v0); err0 == nil {
		return sub0, nil
	}
	return sub, err
}
