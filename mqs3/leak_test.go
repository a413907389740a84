package mqs3

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if a test leaves a goroutine running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
