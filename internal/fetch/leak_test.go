package fetch

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if decoding leaves a goroutine running (the
// pooled zstd decoders are synchronous and never closed).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
