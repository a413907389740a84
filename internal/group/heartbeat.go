package group

import (
	"context"
	"fmt"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/heartbeat"
	"go.uber.org/zap"
)

// heartbeatLoop runs from the first join until Close: heartbeats belong to
// the member, not to a generation, so they go on while the owner drains
// the partitions of an ended generation (the coordinator keeps a member of
// a rebalancing group alive as long as it heartbeats, up to the rebalance
// timeout). While a JoinGroup or SyncGroup is in flight they go to another
// connection and change nothing (see keepAlive); after the member was
// fenced they stop (there is nothing to keep alive until it rejoins).
//
// REBALANCE_IN_PROGRESS ends the generation with ErrRebalance and heartbeats
// go on; UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION and FENCED_INSTANCE_ID end it
// with ErrFenced; NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE and broken
// connections make the next heartbeat find the coordinator again. The
// leader also checks the partition counts of the group's topics every
// WatchInterval and ends the generation when they changed.
func (m *Membership) heartbeatLoop() {
	defer close(m.hbDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stop
		cancel()
	}()
	ticker := time.NewTicker(m.cfg.HeartbeatInterval)
	defer ticker.Stop()
	lastWatch := time.Now()
	for {
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
		m.mu.Lock()
		gen, id, joining := m.gen, m.memberID, m.joining
		m.mu.Unlock()
		if gen == nil || gen.Fenced() || id == "" {
			continue
		}
		if joining {
			if id == gen.MemberID {
				m.keepAlive(ctx, gen.ID, id)
			}
			continue
		}
		if err := m.heartbeat(ctx, gen, id); err != nil && ctx.Err() == nil {
			m.log.Debug("heartbeat", zap.Int32("generation", gen.ID), zap.Error(err))
		}
		if gen.Leader && gen.Err() == nil && time.Since(lastWatch) >= m.cfg.WatchInterval {
			lastWatch = time.Now()
			m.watch(ctx, gen)
		}
	}
}

// heartbeat sends one heartbeat for gen and acts on the answer.
func (m *Membership) heartbeat(ctx context.Context, gen *Generation, id string) error {
	// A heartbeat is useless once the session timeout passed.
	ctx, cancel := context.WithTimeout(ctx, min(m.cfg.SessionTimeout, m.cfg.RequestTimeout))
	defer cancel()
	conn, err := m.conn(ctx)
	if err != nil {
		return err
	}
	req := &heartbeat.Request{GroupID: m.cfg.Group, GenerationID: gen.ID, MemberID: id, GroupInstanceID: m.cfg.InstanceID}
	res, err := m.roundTripRaw(ctx, conn, req, heartbeatVersion)
	if err != nil {
		return err
	}
	code, _, err := throttleAndError(res)
	if err != nil {
		return err
	}
	if code == 0 {
		return nil
	}
	err = m.groupError(conn.Addr(), "heartbeat", code)
	switch kafka.Error(code) {
	case kafka.RebalanceInProgress:
		gen.end(fmt.Errorf("%w (generation %d)", ErrRebalance, gen.ID))
	case kafka.UnknownMemberId:
		m.mu.Lock()
		if m.memberID == id {
			m.memberID = ""
		}
		m.mu.Unlock()
		gen.end(fmt.Errorf("%w: %w", ErrFenced, err))
	case kafka.IllegalGeneration, kafka.FencedInstanceID:
		gen.end(fmt.Errorf("%w: %w", ErrFenced, err))
	}
	return err
}

// keepAlive heartbeats for a member whose JoinGroup or SyncGroup is in
// flight, on the coordinator's control connection (the group connection
// holds the JoinGroup, and Kafka answers a connection's requests in order),
// and ignores the answer: the join's own answer tells what became of the
// member. Kafka keeps a member it waits for alive and answers these
// REBALANCE_IN_PROGRESS or ILLEGAL_GENERATION; kfake expires it once the
// session timeout passed since its last heartbeat and never answers its
// JoinGroup, so without them a member that rejoined first, while the group
// waited for a slower one, was dropped and its join hung until its timeout.
func (m *Membership) keepAlive(ctx context.Context, genID int32, id string) {
	ctx, cancel := context.WithTimeout(ctx, min(m.cfg.SessionTimeout, m.cfg.RequestTimeout))
	defer cancel()
	addr, err := m.coordinator(ctx)
	if err != nil {
		return
	}
	conn, err := m.cfg.Network.Conn(ctx, addr, wire.PurposeControl)
	if err != nil {
		return
	}
	req := &heartbeat.Request{GroupID: m.cfg.Group, GenerationID: genID, MemberID: id, GroupInstanceID: m.cfg.InstanceID}
	p, err := conn.SendMax(ctx, req, heartbeatVersion, true)
	if err != nil {
		return
	}
	_, _ = p.Wait(ctx)
}

// watch ends gen when a topic's partition count differs from the one the
// leader assigned from (partitions added, a missing topic created).
func (m *Membership) watch(ctx context.Context, gen *Generation) {
	topics := make([]string, 0, len(gen.counts))
	for t := range gen.counts {
		topics = append(topics, t)
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	_, counts, err := m.metadata(ctx, topics)
	if err != nil {
		return
	}
	for t, n := range gen.counts {
		if counts[t] != n {
			m.log.Info("partition count changed: rebalancing",
				zap.String("topic", t), zap.Int32("was", n), zap.Int32("now", counts[t]))
			gen.end(fmt.Errorf("%w: topic %q has %d partitions, assigned with %d", ErrRebalance, t, counts[t], n))
			return
		}
	}
}
