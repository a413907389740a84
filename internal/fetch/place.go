package fetch

import (
	"context"
	"errors"
	"fmt"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/listoffsets"
	"go.uber.org/zap"
)

// placeLoop puts partitions on their leaders' sources: it looks up leaders
// (fresh metadata) for the partitions that need one and start offsets
// (ListOffsets) for those that need one, retrying with backoff while some
// cannot be placed.
func (f *Fetcher) placeLoop() {
	defer f.wg.Done()
	failures := 0
	for {
		if failures == 0 {
			select {
			case <-f.placeWake:
			case <-f.ctx.Done():
				return
			}
		}
		if f.placeOnce(failures) {
			failures = 0
			continue
		}
		failures++
		if !sleep(f.ctx, placeBackoff.Delay(failures)) {
			return
		}
	}
}

// placeOnce makes one round of lookups and reports whether every partition
// waiting for one was placed. failures counts the rounds before that did
// not place everything, for logging.
func (f *Fetcher) placeOnce(failures int) bool {
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.RequestTimeout)
	defer cancel()
	warn := failures == 0 || failures%20 == 0 // about every 20 s while it lasts
	placed := f.placeLeaders(ctx, warn)

	// Start offsets, one ListOffsets request per leader.
	type entry struct {
		p     *Partition
		epoch int32
		reset int64
		gen   uint64
	}
	byLeader := make(map[int32][]entry)
	f.mu.Lock()
	for _, p := range f.parts {
		if p.place != needOffset {
			continue
		}
		p.mu.Lock()
		byLeader[p.leader] = append(byLeader[p.leader], entry{p, p.epoch, p.reset, p.gen})
		p.mu.Unlock()
	}
	f.mu.Unlock()
	for leader, entries := range byLeader {
		req := &listoffsets.Request{ReplicaID: -1, IsolationLevel: int8(f.cfg.Isolation)}
		for _, e := range entries {
			rp := listoffsets.RequestPartition{Partition: e.p.id, CurrentLeaderEpoch: e.epoch, Timestamp: e.reset}
			if k := len(req.Topics); k > 0 && req.Topics[k-1].Topic == e.p.topic {
				req.Topics[k-1].Partitions = append(req.Topics[k-1].Partitions, rp)
			} else {
				req.Topics = append(req.Topics, listoffsets.RequestTopic{Topic: e.p.topic, Partitions: []listoffsets.RequestPartition{rp}})
			}
		}
		res, err := f.listOffsets(ctx, leader, req)
		if err != nil {
			if warn {
				f.log.Warn("cannot look up start offsets; retrying", zap.Int32("broker", leader), zap.Error(err))
			}
			for _, e := range entries {
				f.replace(e.p, e.gen, needLeader) // the leader may be gone
			}
			placed = false
			continue
		}
		got := make(map[topicPartition]listoffsets.ResponsePartition)
		for _, t := range res.Topics {
			for _, rp := range t.Partitions {
				got[topicPartition{t.Topic, rp.Partition}] = rp
			}
		}
		for _, e := range entries {
			rp, ok := got[topicPartition{e.p.topic, e.p.id}]
			var perr error
			if !ok {
				perr = fmt.Errorf("no answer for %s[%d]", e.p.topic, e.p.id)
			} else if rp.ErrorCode != 0 {
				perr = kafka.Error(rp.ErrorCode)
			}
			switch {
			case perr == nil:
				f.position(e.p, e.gen, rp.Offset)
			case leaderError(perr) || !ok:
				f.replace(e.p, e.gen, needLeader)
				placed = false
			default:
				e.p.fail(e.gen, fmt.Errorf("fetch: %s[%d]: looking up its start offset: %w", e.p.topic, e.p.id, perr))
			}
		}
	}
	return placed
}

// placeLeaders looks up the leaders of the partitions that need one and
// moves them on: to their source, or to an offset lookup.
func (f *Fetcher) placeLeaders(ctx context.Context, warn bool) bool {
	f.mu.Lock()
	var waiting []*Partition
	seen := make(map[string]bool)
	var topics []string
	for _, p := range f.parts {
		if p.place == needLeader {
			waiting = append(waiting, p)
			if !seen[p.topic] {
				seen[p.topic] = true
				topics = append(topics, p.topic)
			}
		}
	}
	f.mu.Unlock()
	if len(waiting) == 0 {
		return true
	}
	md, err := f.cfg.Client.Metadata(ctx, topics)
	if err != nil {
		if warn {
			f.log.Warn("cannot look up partition leaders; retrying", zap.Strings("topics", topics), zap.Error(err))
		}
		return false
	}
	placed := true
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range waiting {
		if f.parts[topicPartition{p.topic, p.id}] != p || p.place != needLeader {
			continue // revoked meanwhile
		}
		pm, err := partitionMetadata(md, p)
		if err != nil {
			if errors.Is(err, kafka.TopicAuthorizationFailed) {
				p.mu.Lock()
				gen := p.gen
				p.mu.Unlock()
				p.fail(gen, fmt.Errorf("fetch: %s[%d]: %w", p.topic, p.id, err))
				continue
			}
			if warn {
				f.log.Warn("partition has no leader yet; retrying", zap.String("topic", p.topic),
					zap.Int32("partition", p.id), zap.Error(err))
			}
			placed = false
			continue
		}
		if p.leader >= 0 && p.leader != pm.Leader {
			f.log.Info("partition moved to a new leader", zap.String("topic", p.topic), zap.Int32("partition", p.id),
				zap.Int32("from", p.leader), zap.Int32("to", pm.Leader), zap.Int32("leader_epoch", pm.LeaderEpoch))
		}
		p.leader, p.epoch = pm.Leader, pm.LeaderEpoch
		p.mu.Lock()
		unpositioned := p.unpositioned
		p.mu.Unlock()
		if unpositioned {
			f.setPlace(p, needOffset)
		} else {
			f.attachLocked(p)
		}
	}
	return placed
}

// partitionMetadata returns p's layout from md, or why it has no leader.
func partitionMetadata(md *wire.Metadata, p *Partition) (wire.PartitionMetadata, error) {
	tm, ok := md.Topics[p.topic]
	if !ok {
		return wire.PartitionMetadata{}, kafka.UnknownTopicOrPartition
	}
	if tm.Err != nil {
		return wire.PartitionMetadata{}, tm.Err
	}
	for _, pm := range tm.Partitions {
		if pm.ID != p.id {
			continue
		}
		if pm.Leader < 0 {
			if pm.Err != nil {
				return pm, pm.Err
			}
			return pm, kafka.LeaderNotAvailable
		}
		if _, ok := md.Brokers[pm.Leader]; !ok {
			return pm, fmt.Errorf("leader %d is not among the brokers: %w", pm.Leader, kafka.LeaderNotAvailable)
		}
		return pm, nil
	}
	return wire.PartitionMetadata{}, kafka.UnknownTopicOrPartition
}

// listOffsets sends req to broker leader on a control connection.
func (f *Fetcher) listOffsets(ctx context.Context, leader int32, req *listoffsets.Request) (*listoffsets.Response, error) {
	addr, ok := f.cfg.Client.BrokerAddr(leader)
	if !ok {
		return nil, fmt.Errorf("fetch: broker %d: not in the metadata", leader)
	}
	conn, err := f.cfg.Network.Conn(ctx, addr, wire.PurposeControl)
	if err != nil {
		return nil, err
	}
	if v, ok := conn.Version(protocol.ListOffsets); !ok || v < 1 {
		return nil, fmt.Errorf("fetch: broker %d (%s) has no ListOffsets version from v1: %w", leader, addr, kafka.UnsupportedVersion)
	}
	res, err := conn.RoundTrip(ctx, req)
	if err != nil {
		return nil, err
	}
	lo, ok := res.(*listoffsets.Response)
	if !ok {
		return nil, fmt.Errorf("fetch: broker %d: unexpected response %T", leader, res)
	}
	return lo, nil
}

// position sets the start offset a lookup (of generation gen) found and
// puts the partition on its source.
func (f *Fetcher) position(p *Partition, gen uint64, offset int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.mu.Lock()
	if p.gen != gen || p.revoked || p.place != needOffset {
		p.mu.Unlock()
		return
	}
	p.offset = offset
	p.unpositioned = false
	p.gen++
	restarted := p.outOfRange
	if restarted {
		// Tell the consumer, after what it was given before: its commit
		// point must restart here too, backwards when the log's end moved
		// below it (truncation, a seek past the end).
		p.outOfRange = false
		p.ready = append(p.ready, &Chunk{NextOffset: offset, HighWatermark: p.hwm.Load(), LastStableOffset: -1,
			Restarted: true, p: p})
	}
	p.mu.Unlock()
	f.attachLocked(p)
	if restarted {
		p.signal()
	}
}

// replace sends a partition waiting for its offset back to a leader lookup.
func (f *Fetcher) replace(p *Partition, gen uint64, to placement) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.mu.Lock()
	ok := p.gen == gen && !p.revoked && p.place == needOffset
	p.mu.Unlock()
	if ok {
		f.setPlace(p, to)
	}
}
