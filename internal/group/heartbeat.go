package group

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/heartbeat"
	"go.uber.org/zap"
)

// heartbeatLoop runs from the first join until Close: heartbeats belong to
// the member, not to a generation, so they go on while the owner drains
// the partitions of an ended generation (the coordinator keeps a member of
// a rebalancing group alive as long as it heartbeats, up to the rebalance
// timeout). They pause while a JoinGroup or SyncGroup is in flight (the
// coordinator does not expire a member it is waiting for) and after the
// member was fenced (there is nothing to keep alive until it rejoins).
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
		if joining || gen == nil || gen.Fenced() || id == "" {
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
