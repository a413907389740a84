package produce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
)

var (
	// ErrClosed fails records produced after Close started, and records
	// still buffered when Close gave up on them.
	ErrClosed = errors.New("mq: closed")

	// ErrMessageTooLarge is wrapped by the error of a record larger than the
	// producer's limits (rejected before it is buffered) and by the error of
	// a record the broker rejected as too large (MESSAGE_TOO_LARGE, which
	// stays in the chain as kafka.MessageSizeTooLarge).
	ErrMessageTooLarge = errors.New("mq: message too large")
)

// outcome is what a produce attempt means for one batch.
type outcome int

const (
	outcomeOK       outcome = iota // written (or a duplicate of a write)
	outcomeRetry                   // not written (or unknown): send it again
	outcomeSplit                   // too large as a batch: send its records one by one
	outcomeSequence                // a break in the sequence chain (idempotence)
	outcomeFail                    // permanent: fail the records
)

// classify maps a partition's error code in a produce response to what the
// engine does with the batch. ambiguous reports an error after which the
// batch may have been written.
func classify(code int16, records int, idempotent bool) (o outcome, ambiguous, refresh bool) {
	if code == 0 {
		return outcomeOK, false, false
	}
	switch kafka.Error(code) {
	case kafka.DuplicateSequenceNumber:
		return outcomeOK, false, false
	case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge:
		if records > 1 {
			return outcomeSplit, false, false
		}
		return outcomeFail, false, false
	case kafka.OutOfOrderSequenceNumber, kafka.UnknownProducerId, kafka.InvalidProducerEpoch:
		if idempotent {
			return outcomeSequence, false, false
		}
		return outcomeFail, false, false
	case kafka.NotLeaderForPartition, kafka.KafkaStorageError, kafka.UnknownTopicOrPartition:
		// Before an append, the partition is led elsewhere, offline or not
		// here. With acks=all, also the answer of a leader that appended
		// the batch and then lost the partition before the batch was
		// replicated (Kafka's DelayedProduce): the batch may be in the
		// log, so its sequence numbers are never given back (the chaos
		// suite's broker restart found a record acknowledged as the
		// duplicate of such a batch, and never written).
		return outcomeRetry, true, true
	case kafka.LeaderNotAvailable, kafka.FencedLeaderEpoch, kafka.UnknownLeaderEpoch,
		kafka.ReplicaNotAvailable, kafka.BrokerNotAvailable, kafka.NotController:
		return outcomeRetry, false, true
	case kafka.RequestTimedOut, kafka.NotEnoughReplicasAfterAppend, kafka.NetworkException:
		// The leader may have appended the batch and failed only to
		// replicate it (or to answer) in time.
		return outcomeRetry, true, false
	case kafka.InvalidMessage: // CORRUPT_MESSAGE
		return outcomeFail, false, false // our CRC is right: a retry would be rejected again
	}
	if kafka.Error(code).Temporary() {
		return outcomeRetry, false, false
	}
	return outcomeFail, false, false
}

// transient reports whether an error from dialing or from the network may
// go away by itself. Broker error codes are classified by classify.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	var ne net.Error
	return errors.Is(err, wire.ErrConnClosed) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// brokerError returns the error of a partition's error code and message.
func brokerError(code int16, msg string) error {
	err := error(kafka.Error(code))
	if code == int16(kafka.MessageSizeTooLarge) || code == int16(kafka.RecordListTooLarge) {
		err = fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
	}
	if msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	return err
}
