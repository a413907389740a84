package produce

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/initproducerid"
	"go.uber.org/zap"
)

// pidState is the producer ID of idempotence: obtained with InitProducerId
// (without a transactional ID, so any broker answers, each time with a new
// ID). Every new ID is a new generation; a partition whose sequence chain
// broke asks for a generation newer than the one it used. Guarded by
// Engine.mu.
type pidState struct {
	id       int64
	epoch    int16
	gen      int // 0: no ID yet
	want     int // the generation partitions wait for
	fetching bool
	failures int
	retryAt  time.Time
}

// identify gives p the producer identity its next new batch carries, and
// reports false when p must wait for a new producer ID (the loop is asked
// for one). e.mu must be held.
func (e *Engine) identify(p *partition) bool {
	if p.idGen > 0 && !p.needFresh {
		return true
	}
	if e.pid.gen > p.idGen {
		p.producerID, p.epoch, p.idGen = e.pid.id, e.pid.epoch, e.pid.gen
		p.nextSeq = 0
		p.needFresh = false
		return true
	}
	if e.pid.want <= p.idGen {
		e.pid.want = p.idGen + 1
		e.signal()
	}
	return false
}

// scheduleProducerID starts an InitProducerId when partitions wait for a
// new producer ID, and returns when it will be retried. e.mu must be held.
func (e *Engine) scheduleProducerID(now time.Time) time.Time {
	if e.pid.want <= e.pid.gen || e.pid.fetching {
		return time.Time{}
	}
	if now.Before(e.pid.retryAt) {
		return e.pid.retryAt
	}
	e.pid.fetching = true
	e.wg.Add(1)
	go e.fetchProducerID()
	return time.Time{}
}

// errIdempotenceRefused explains a producer ID the cluster would not give.
func errIdempotenceRefused(err error) error {
	return fmt.Errorf("mq: idempotence needs a producer ID, which the cluster refused (grant the IdempotentWrite "+
		"operation on the cluster, or Write on the topic, or disable idempotence with mq.WithIdempotence(false)): %w", err)
}

// fetchProducerID asks a broker for a new producer ID.
func (e *Engine) fetchProducerID() {
	defer e.wg.Done()
	id, epoch, err := e.initProducerID()
	now := time.Now()

	e.mu.Lock()
	e.pid.fetching = false
	var (
		done []finished
		wake []*sink
	)
	switch {
	case e.ctx.Err() != nil:
	case err == nil:
		e.pid.id, e.pid.epoch = id, epoch
		e.pid.gen++
		e.pid.failures = 0
		e.log.Debug("producer ID", zap.Int64("producer_id", id), zap.Int16("epoch", epoch), zap.Int("generation", e.pid.gen))
		for _, s := range e.sinks {
			wake = append(wake, s)
		}
	default:
		e.pid.failures++
		e.pid.retryAt = now.Add(e.backoff(e.pid.failures))
		if transient(err) || isRetriableInitError(err) {
			e.log.Debug("producer ID: retrying", zap.Error(err))
			for _, t := range e.topics {
				for _, p := range t.parts {
					for _, r := range p.queue {
						r.lastErr = err
					}
				}
			}
			break
		}
		// Permanent: fail what waits for an ID, and ask again only when
		// new records need one.
		err = errIdempotenceRefused(err)
		e.log.Warn("no producer ID", zap.Error(err))
		e.pid.want = e.pid.gen
		for _, t := range e.topics {
			for _, p := range t.parts {
				if p.idGen > 0 && !p.needFresh {
					continue
				}
				for _, r := range p.queue {
					done = append(done, finished{r, err})
				}
				p.unqueue(len(p.queue), now)
			}
		}
	}
	e.mu.Unlock()
	e.report(done)
	for _, s := range wake {
		s.signal()
	}
	e.signal()
}

// isRetriableInitError reports the InitProducerId errors that go away.
func isRetriableInitError(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kafka.GroupCoordinatorNotAvailable, kafka.NotCoordinatorForGroup, kafka.GroupLoadInProgress,
		kafka.ConcurrentTransactions:
		return true
	}
	return ke.Temporary()
}

// initProducerID runs one InitProducerId exchange.
func (e *Engine) initProducerID() (int64, int16, error) {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.RequestTimeout)
	defer cancel()
	conn, err := e.client.Any(ctx)
	if err != nil {
		return 0, 0, err
	}
	if _, ok := conn.Version(protocol.InitProducerId); !ok {
		return 0, 0, fmt.Errorf("mq: broker %s has no InitProducerId: %w", conn.Addr(), kafka.UnsupportedVersion)
	}
	res, err := conn.RoundTrip(ctx, &initproducerid.Request{
		TransactionTimeoutMs: math.MaxInt32,
		ProducerID:           -1,
		ProducerEpoch:        -1,
	})
	if err != nil {
		return 0, 0, err
	}
	r, ok := res.(*initproducerid.Response)
	if !ok {
		return 0, 0, fmt.Errorf("mq: unexpected InitProducerId response %T", res)
	}
	if r.ErrorCode != 0 {
		return 0, 0, kafka.Error(r.ErrorCode)
	}
	return r.ProducerID, r.ProducerEpoch, nil
}
