package mq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mqkit/mq/internal/backoff"
	"github.com/mqkit/mq/internal/group"
	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// joinBackoff spaces the attempts to join the group after an error that is
// not membership churn (no broker, coordinator moving).
var joinBackoff = backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}

// missingTopicBackoff spaces the checks for a consumed topic that does not
// exist: one check, and one log line, per interval.
var missingTopicBackoff = backoff.Policy{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2}

// owned is a partition the member holds across generations (cooperative
// rebalancing keeps it through a rebalance).
type owned struct {
	ps     *partitionState
	cancel context.CancelFunc
}

// runGroup is the member's life: wait for the topics, join, consume the
// generation's partitions, and again, until the run stops. It returns with
// every partition released and its offsets committed.
func (s *session[T]) runGroup(m *group.Membership, client *wire.Client) {
	c := s.c
	held := make(map[group.TopicPartition]*owned)
	heldGen := group.NoGeneration
	var last *group.Generation
	for attempt := 0; s.runCtx.Err() == nil; {
		if !s.awaitTopics(client) {
			break
		}
		claim := make([]group.TopicPartition, 0, len(held))
		for tp := range held {
			claim = append(claim, tp)
		}
		gen, err := s.join(m, claim, heldGen)
		if err == nil && s.runCtx.Err() != nil {
			// Stopped while rejoining with partitions held (cooperative):
			// their final commit goes through the generation just joined,
			// the only one the coordinator still accepts.
			last = gen
			break
		}
		if err != nil {
			if s.runCtx.Err() != nil || errors.Is(err, group.ErrMemberClosed) {
				break
			}
			if aerr := authError(err); errors.Is(aerr, ErrAuthentication) {
				s.fail(fmt.Errorf("mq: consumer group %q: %w", c.group, aerr))
				break
			}
			if fatalJoinError(err) {
				s.fail(fmt.Errorf("mq: consumer group %q: %w", c.group, err))
				break
			}
			attempt++
			c.log.Warn("joining group failed, retrying", zap.Error(err), zap.Int("attempt", attempt))
			if !membershipChurn(err) {
				s.lastJoinErr = err
			}
			sleepCtx(s.runCtx, joinBackoff.Delay(attempt))
			continue
		}
		attempt = 0
		s.joinedOnce = true
		last = gen
		heldGen = gen.ID
		s.runGeneration(m, gen, held)
	}
	if len(held) > 0 {
		all := make([]group.TopicPartition, 0, len(held))
		for tp := range held {
			all = append(all, tp)
		}
		s.release(m, last, held, all, last != nil && !last.Fenced())
	}
	c.setPartitions(nil)
}

// join joins the group. While it holds partitions (cooperative), a stop
// does not cancel the join: the generation it left is over, so the final
// commit of those partitions needs the next one. The join then ends within
// the rebalance timeout.
func (s *session[T]) join(m *group.Membership, claim []group.TopicPartition, heldGen int32) (*group.Generation, error) {
	if len(claim) == 0 {
		return m.Join(s.runCtx, claim, heldGen)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.runCtx), s.c.cfg.rebalanceTimeout+s.c.cfg.commitTimeout)
	defer cancel()
	stop := context.AfterFunc(s.runCtx, func() {
		s.c.log.Info("stopping: finishing the rejoin first, to commit the partitions held through it")
	})
	defer stop()
	return m.Join(ctx, claim, heldGen)
}

// fatalJoinError reports join errors that no retry can cure.
func fatalJoinError(err error) bool {
	for _, e := range []kafka.Error{kafka.InconsistentGroupProtocol, kafka.InvalidSessionTimeout,
		kafka.FencedInstanceID, kafka.GroupMaxSizeReached, kafka.InvalidGroupId, kafka.UnsupportedVersion,
		kafka.GroupAuthorizationFailed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// runGeneration adopts gen's assignment — revoking the held partitions it
// does not keep, starting those it adds — and commits on every tick until
// the generation ends or the run stops. Eager protocols then release every
// partition; cooperative-sticky keeps them for the next generation.
func (s *session[T]) runGeneration(m *group.Membership, gen *group.Generation, held map[group.TopicPartition]*owned) {
	c := s.c
	subs := make(map[string]subscription, len(s.subs))
	for _, sub := range s.subs {
		subs[sub.topic] = sub
	}
	assigned := make(map[group.TopicPartition]bool, len(gen.Assigned))
	var added []group.TopicPartition
	for _, tp := range gen.Assigned {
		if _, ok := subs[tp.Topic]; !ok || assigned[tp] {
			continue // not a topic of ours (a leader's mistake): leave it
		}
		assigned[tp] = true
		if held[tp] == nil {
			added = append(added, tp)
		}
	}
	var revoked []group.TopicPartition
	for tp := range held {
		if !assigned[tp] {
			revoked = append(revoked, tp)
		}
	}
	if len(revoked) > 0 {
		// Cooperative: these move to another member, which gets them in
		// the follow-up rebalance once they are committed here.
		s.release(m, gen, held, revoked, true)
	}

	starts, err := m.FetchOffsets(s.runCtx, added)
	if err != nil {
		added = nil
		switch aerr := authError(err); {
		case s.runCtx.Err() != nil:
		case errors.Is(aerr, ErrAuthentication), errors.Is(err, kafka.GroupAuthorizationFailed),
			errors.Is(err, kafka.TopicAuthorizationFailed):
			s.fail(fmt.Errorf("mq: consumer group %q: fetching committed offsets: %w", c.group, aerr))
		default:
			c.log.Warn("fetching committed offsets failed: rejoining", zap.Int32("generation", gen.ID), zap.Error(err))
			sleepCtx(s.runCtx, time.Second) // not a tight loop of joins
			m.Rejoin(gen)
		}
	}
	if c.cfg.onAssigned != nil && (len(added) > 0 || !gen.Cooperative) {
		// Before the partitions start: a seek from the hook applies as
		// they start (pause.go).
		ids := make(map[string][]int)
		for _, tp := range added {
			ids[tp.Topic] = append(ids[tp.Topic], int(tp.Partition))
		}
		for _, l := range ids {
			slices.Sort(l)
		}
		c.cfg.onAssigned(ids)
	}
	for _, tp := range added {
		start := starts[tp]
		if start < 0 {
			start = int64(c.cfg.startOffset)
		}
		ps := newPartitionState(subs[tp.Topic], int(tp.Partition), start)
		ctx, cancel := context.WithCancel(context.Background())
		held[tp] = &owned{ps: ps, cancel: cancel}
		s.startPartition(ctx, ps)
	}

	c.rebalances.Add(1)
	all := heldIDs(held, nil)
	c.log.Info("partitions assigned", zap.Int32("generation", gen.ID), zap.String("protocol", gen.Protocol),
		zap.Any("partitions", all), zap.Int("added", len(added)), zap.Int("revoked", len(revoked)))
	if obs := c.cfg.observer; obs != nil {
		obs.Rebalanced(c.group, gen.ID, all)
	}
	c.setPartitions(heldStates(held))
	c.joined.Store(true)
	if gen.Cooperative && len(revoked) > 0 {
		m.Rejoin(gen) // KIP-429: the revoked partitions are assigned in a follow-up rebalance
	}

	s.commitLoop(m, gen, held)
	if len(held) == 0 {
		c.joined.Store(false)
		return
	}
	all2 := make([]group.TopicPartition, 0, len(held))
	for tp := range held {
		all2 = append(all2, tp)
	}
	switch {
	case gen.Fenced():
		// Lost rather than revoked: the coordinator refuses commits
		// through this generation, and the partitions may be another
		// member's already.
		c.log.Warn("member fenced: partitions lost, their uncommitted messages will be delivered again",
			zap.Int32("generation", gen.ID), zap.Error(gen.Err()))
		c.joined.Store(false)
		s.release(m, gen, held, all2, false)
	case !gen.Cooperative || s.runCtx.Err() != nil:
		c.joined.Store(false)
		s.release(m, gen, held, all2, true)
	default:
		// Still consuming through the rejoin: still ready.
		// Cooperative: the partitions go on through the rejoin, which
		// commits nothing until the next generation; commit what they
		// processed while the coordinator still takes this generation's
		// commits (as Java's consumer does before it rejoins).
		s.commit(m, gen, heldStates(held), false)
	}
}

// commitLoop commits the held partitions' processed offsets on every tick
// until the generation ends or the run stops.
func (s *session[T]) commitLoop(m *group.Membership, gen *group.Generation, held map[group.TopicPartition]*owned) {
	ticker := time.NewTicker(s.c.cfg.commitInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			s.commit(m, gen, heldStates(held), false)
		case <-gen.Done():
			return
		case <-s.runCtx.Done():
			return
		}
	}
}

// release stops the partitions tps, waits for their in-flight messages
// (bounded by the shutdown timeout; heartbeats go on meanwhile), commits
// what they processed through gen if commit, and forgets them.
func (s *session[T]) release(m *group.Membership, gen *group.Generation, held map[group.TopicPartition]*owned, tps []group.TopicPartition, commit bool) {
	c := s.c
	slices.SortFunc(tps, func(a, b group.TopicPartition) int {
		return TopicPartition{a.Topic, int(a.Partition)}.compare(TopicPartition{b.Topic, int(b.Partition)})
	})
	parts := make([]*partitionState, 0, len(tps))
	for _, tp := range tps {
		if o := held[tp]; o != nil {
			o.cancel()
			parts = append(parts, o.ps)
		}
	}
	deadline := time.NewTimer(c.cfg.shutdownTimeout + time.Second)
	defer deadline.Stop()
wait:
	for _, ps := range parts {
		select {
		case <-ps.done:
		case <-deadline.C:
			c.log.Warn("handlers did not finish within the shutdown timeout; their messages stay uncommitted",
				zap.Duration("timeout", c.cfg.shutdownTimeout))
			s.mu.Lock()
			s.overran = true
			s.mu.Unlock()
			break wait
		}
	}
	if commit && gen != nil {
		s.commit(m, gen, parts, true)
	}
	ids := heldIDs(held, tps)
	for _, tp := range tps {
		delete(held, tp)
	}
	c.setPartitions(heldStates(held))
	genID := group.NoGeneration
	if gen != nil {
		genID = gen.ID
	}
	if c.cfg.onRevoked != nil {
		c.cfg.onRevoked(ids)
	}
	c.log.Info("partitions released", zap.Int32("generation", genID), zap.Any("partitions", ids))
}

// commit commits the processed offsets of parts that moved since their last
// commit, through gen.
func (s *session[T]) commit(m *group.Membership, gen *group.Generation, parts []*partitionState, final bool) {
	c := s.c
	offs := make(map[group.TopicPartition]int64)
	for _, ps := range parts {
		if p := ps.tracker.CommitPoint(); p >= 0 && p > ps.committed.Load() {
			offs[group.TopicPartition{Topic: ps.topic, Partition: int32(ps.id)}] = p
		}
	}
	if len(offs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.commitTimeout+time.Second)
	defer cancel()
	if err := m.Commit(ctx, gen, offs); err != nil {
		lvl := zap.WarnLevel
		if final {
			lvl = zap.ErrorLevel
		}
		c.log.Log(lvl, "commit failed; offsets will be committed later or the messages redelivered",
			zap.Int32("generation", gen.ID), zap.Bool("final", final), zap.Error(err))
		return
	}
	for _, ps := range parts {
		if o, ok := offs[group.TopicPartition{Topic: ps.topic, Partition: int32(ps.id)}]; ok {
			ps.committed.Store(o)
			if obs := c.cfg.observer; obs != nil {
				obs.Committed(c.group, ps.topic, ps.id, o)
			}
		}
	}
	c.commits.Add(1)
	c.log.Debug("committed", zap.Int32("generation", gen.ID), zap.Int("partitions", len(offs)))
}

// heldIDs lists partitions by topic: those of tps, or every held one when
// tps is nil.
func heldIDs(held map[group.TopicPartition]*owned, tps []group.TopicPartition) map[string][]int {
	if tps == nil {
		for tp := range held {
			tps = append(tps, tp)
		}
	}
	out := make(map[string][]int)
	for _, tp := range tps {
		out[tp.Topic] = append(out[tp.Topic], int(tp.Partition))
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

// heldStates lists the held partitions' states by topic and partition.
func heldStates(held map[group.TopicPartition]*owned) []*partitionState {
	out := make([]*partitionState, 0, len(held))
	for _, o := range held {
		out = append(out, o.ps)
	}
	slices.SortFunc(out, func(a, b *partitionState) int {
		return TopicPartition{a.topic, a.id}.compare(TopicPartition{b.topic, b.id})
	})
	return out
}

// awaitTopics returns true once every consumed topic exists (or when that
// cannot be told: the join then meets the problem and retries). While some
// are missing it waits with backoff, one log line per check, and Ready names
// them; with WithMissingTopicsFatal it fails the run with ErrTopicNotFound.
func (s *session[T]) awaitTopics(client *wire.Client) bool {
	c := s.c
	defer c.missing.Store(nil)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(s.runCtx, 10*time.Second)
		md, err := client.Metadata(ctx, c.topics)
		cancel()
		if s.runCtx.Err() != nil {
			return false
		}
		if err != nil {
			return true
		}
		var missing []string
		for _, t := range c.topics {
			if tm, ok := md.Topics[t]; !ok || errors.Is(tm.Err, kafka.UnknownTopicOrPartition) {
				missing = append(missing, t)
			}
		}
		if len(missing) == 0 {
			return true
		}
		if c.cfg.missingFatal {
			s.fail(fmt.Errorf("mq: consumer group %q: topics %q: %w (%w)", c.group, missing, ErrTopicNotFound,
				kafka.UnknownTopicOrPartition))
			return false
		}
		d := missingTopicBackoff.Delay(attempt)
		c.missing.Store(&missing)
		c.log.Warn("topics do not exist: waiting for them (consumers never create topics)",
			zap.Strings("topics", missing), zap.Duration("next_check", d))
		if !sleepCtx(s.runCtx, d) {
			return false
		}
	}
}
