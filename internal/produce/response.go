package produce

import (
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
	"go.uber.org/zap"
)

type partitionKey struct {
	topic     string
	partition int32
}

// settleRequest applies a request's response (or its error) to its
// batches: delivered, failed, or put back for a retry. It returns the
// records to report, the sinks to wake (a partition that moved while in
// flight may now be sent by its new sink) and whether metadata should be
// refreshed. e.mu must be held.
func (e *Engine) settleRequest(s *sink, req *request, res protocol.Message, err error, now time.Time) (done []finished, wake []*sink, refresh bool) {
	aborted := e.ctx.Err() != nil
	var parts map[partitionKey]*produceAPI.ResponsePartition
	if err == nil && e.cfg.Acks != 0 {
		pr, ok := res.(*produceAPI.Response)
		if !ok {
			err = fmt.Errorf("mq: unexpected produce response %T", res)
		} else {
			parts = make(map[partitionKey]*produceAPI.ResponsePartition, len(req.batches))
			for i := range pr.Topics {
				for j := range pr.Topics[i].Partitions {
					rp := &pr.Topics[i].Partitions[j]
					parts[partitionKey{pr.Topics[i].Topic, rp.Partition}] = rp
				}
			}
			if pr.ThrottleTimeMs > 0 { // KIP-219: the broker asks the client to wait
				s.pausedTo = now.Add(time.Duration(pr.ThrottleTimeMs) * time.Millisecond)
			}
		}
	}
	switch {
	case err == nil:
		s.connErrs = 0
	case !aborted:
		s.connErrs++
		s.pausedTo = now.Add(e.backoff(s.connErrs))
		refresh = true // the broker may be gone
		s.logger().Debug("produce request failed", zap.Int("batches", len(req.batches)), zap.Error(err))
	}

	for _, b := range req.batches {
		p := b.p
		b.inflight = false
		p.inflight--
		switch {
		case aborted:
			if req.sent {
				b.maybeWritten = true // the abort may have cut its response off
			}
			done = e.failBatch(b, closedError(b), done)
		case err != nil && e.cfg.Fatal(err):
			done = e.failBatch(b, fmt.Errorf("mq: produce to %s[%d]: %w", p.t.name, p.id, err), done)
		case err != nil:
			done = e.retryBatch(b, err, req.sent, now, done)
		case e.cfg.Acks == 0:
			done = e.succeedBatch(b, -1, 0, done)
		default:
			rp := parts[partitionKey{p.t.name, p.id}]
			if rp == nil {
				done = e.retryBatch(b, fmt.Errorf("mq: no produce response for %s[%d]", p.t.name, p.id), true, now, done)
				break
			}
			var r bool
			done, r = e.settleBatch(b, rp, now, done)
			refresh = refresh || r
		}
	}
	for _, b := range req.batches {
		p := b.p
		if p.inflight == 0 {
			p.settle(now)
			if p.sink != nil && p.sink != s {
				wake = append(wake, p.sink)
			}
		}
	}
	if refresh {
		e.meta.want = true
	}
	return done, wake, refresh
}

// settleBatch applies one partition's response to its batch.
func (e *Engine) settleBatch(b *batch, rp *produceAPI.ResponsePartition, now time.Time, done []finished) ([]finished, bool) {
	p := b.p
	o, ambiguous, refresh := classify(rp.ErrorCode, len(b.recs), e.cfg.Idempotent)
	switch o {
	case outcomeOK:
		return e.succeedBatch(b, rp.BaseOffset, rp.LogAppendTime, done), false
	case outcomeRetry:
		return e.retryBatch(b, brokerError(rp.ErrorCode, rp.ErrorMessage), ambiguous, now, done), refresh
	case outcomeSplit:
		// One record is too large for the broker: send the batch's
		// records one by one so that only the culprit fails.
		if b.expired {
			p.remove(b)
			return done, false
		}
		p.breakChain(b)
		p.single = max(p.single, len(b.recs))
		return done, false
	case outcomeSequence:
		err := brokerError(rp.ErrorCode, rp.ErrorMessage)
		if b.stale {
			return done, false
		}
		if !p.isOldest(b) {
			return e.retryBatch(b, err, false, now, done), false // an earlier batch is missing: it goes first
		}
		e.log.Info("sequence chain broken: restarting the partition's batches under a fresh producer ID",
			zap.String("topic", p.t.name), zap.Int32("partition", p.id), zap.Int64("producer_id", b.id.producerID),
			zap.Int32("sequence", b.id.seq), zap.Error(err))
		for _, r := range b.recs {
			r.lastErr = err
		}
		p.breakChain(b)
		return done, false
	}
	// Permanent.
	err := brokerError(rp.ErrorCode, rp.ErrorMessage)
	if len(rp.RecordErrors) > 0 && !b.expired {
		rejected := make(map[int32]string, len(rp.RecordErrors))
		for _, re := range rp.RecordErrors {
			rejected[re.BatchIndex] = re.BatchIndexErrorMessage
		}
		kerr := kafka.Error(rp.ErrorCode)
		for i, r := range b.recs {
			if msg, bad := rejected[int32(i)]; bad {
				done = append(done, finished{r, fmt.Errorf("mq: produce to %s[%d]: record rejected: %w: %s", p.t.name, p.id, kerr, msg)})
			} else {
				done = append(done, finished{r, fmt.Errorf("mq: produce to %s[%d]: batch rejected because of another record: %w", p.t.name, p.id, kerr)})
			}
		}
		b.expired = true // reported
	}
	return e.failBatch(b, fmt.Errorf("mq: produce to %s[%d]: %w", p.t.name, p.id, err), done), false
}

// succeedBatch reports a written batch.
func (e *Engine) succeedBatch(b *batch, base int64, logAppendMs int64, done []finished) []finished {
	p := b.p
	var logTime time.Time
	if logAppendMs > 0 {
		logTime = time.UnixMilli(logAppendMs)
	}
	if !b.expired {
		for i, r := range b.recs {
			if base >= 0 {
				r.Offset = base + int64(i)
			}
			r.LogAppendTime = logTime
			done = append(done, finished{r, nil})
		}
	}
	p.pipelined = true
	p.backoff = 0
	p.remove(b)
	return done
}

// retryBatch puts a batch back to be sent again after the partition's
// backoff; ambiguous means the attempt may have written it.
func (e *Engine) retryBatch(b *batch, err error, ambiguous bool, now time.Time, done []finished) []finished {
	p := b.p
	if ambiguous {
		b.maybeWritten = true
	}
	if b.expired {
		// Failed already: never resent. If it was not written, the next
		// batch finds the gap and breaks the chain.
		p.remove(b)
		return done
	}
	for _, r := range b.recs {
		r.lastErr = err
	}
	p.failing = true
	p.pipelined = false
	if p.backoff == 0 {
		p.backoff = e.cfg.RetryBackoff
	} else {
		p.backoff = min(p.backoff*2, e.cfg.MaxRetryBackoff)
	}
	p.retryAt = now.Add(p.backoff)
	e.log.Debug("retrying produce", zap.String("topic", p.t.name), zap.Int32("partition", p.id),
		zap.Duration("backoff", p.backoff), zap.Error(err))
	return done
}

// failBatch fails a batch's records for good (unless they were reported
// already) and drops it.
func (e *Engine) failBatch(b *batch, err error, done []finished) []finished {
	if !b.expired {
		for _, r := range b.recs {
			done = append(done, finished{r, err})
		}
		b.expired = true
	}
	e.dropBatch(b)
	return done
}

// dropBatch removes a batch whose records were reported. With idempotence,
// a batch the broker certainly did not write leaves a gap: the batches sent
// after it break their chain at once (rather than after their own
// rejection), and when none was, its sequence numbers are given back.
func (e *Engine) dropBatch(b *batch) {
	p := b.p
	if e.cfg.Idempotent && !b.maybeWritten && !b.stale && e.ctx.Err() == nil {
		if i := p.indexOf(b); i >= 0 && i+1 < len(p.batches) {
			p.breakChain(p.batches[i+1])
		} else {
			p.giveBack(b)
		}
	}
	p.remove(b)
}

// backoff returns the wait before attempt n+1 after n failures in a row.
func (e *Engine) backoff(n int) time.Duration {
	d := e.cfg.RetryBackoff
	for i := 1; i < n && d < e.cfg.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, e.cfg.MaxRetryBackoff)
}
