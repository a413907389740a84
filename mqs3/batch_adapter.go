package mqs3

import "fmt"

// This file adapts the batch form to the consumer's batch handler API. Until
// the core has one, a partial failure is reported as a *StoreError; once it
// has mq.BatchFailedAt, batchFailedAt returns that instead.

// StoreError reports a batch of which only the first Stored messages were
// stored; msgs[Stored] failed with Err.
type StoreError struct {
	Stored int
	Err    error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("mqs3: stored %d message(s) of the batch, then: %v", e.Stored, e.Err)
}

func (e *StoreError) Unwrap() error { return e.Err }

func batchFailedAt(i int, err error) error {
	return &StoreError{Stored: i, Err: err}
}
