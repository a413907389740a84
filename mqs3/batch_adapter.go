package mqs3

import (
	"fmt"

	"github.com/mqkit/mq"
)

// StoreError reports a batch of which only the first Stored messages were
// stored; msgs[Stored] failed with Err. [HandleBatch] returns it wrapped by
// mq.BatchFailedAt(Stored, ...), so that the consumer commits the stored
// messages and retries from msgs[Stored]; errors.As still finds it.
type StoreError struct {
	Stored int
	Err    error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("mqs3: stored %d message(s) of the batch, then: %v", e.Stored, e.Err)
}

func (e *StoreError) Unwrap() error { return e.Err }

func batchFailedAt(i int, err error) error {
	return mq.BatchFailedAt(i, &StoreError{Stored: i, Err: err})
}
