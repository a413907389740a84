package mq_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if any test leaves a goroutine running:
// producers and consumers must release everything they start.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
