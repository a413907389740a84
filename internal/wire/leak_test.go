package wire

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if a test leaves a goroutine running:
// connections, pools and the fake cluster must stop everything they start.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
