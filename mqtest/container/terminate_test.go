package container

import (
	"context"
	"testing"

	"github.com/testcontainers/testcontainers-go"
)

// Containers are removed without Docker's 10 s stop timeout: the broker's
// PID 1 ignores SIGTERM, so waiting would only delay every test's cleanup.
// This checks the option handed to Docker, not how long a removal took.
func TestContainersAreKilledNotStopped(t *testing.T) {
	o := testcontainers.NewTerminateOptions(context.Background(), terminateOptions()...)
	if o.StopTimeout() == nil || *o.StopTimeout() != 0 {
		t.Fatalf("stop timeout passed to Docker = %v, want 0", o.StopTimeout())
	}
}
