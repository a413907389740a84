package container_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqkit/mq/mqtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clearEnv makes the mode selection independent of the developer's shell.
func clearEnv(t *testing.T) {
	t.Setenv(mqtest.EnvMode, "")
	t.Setenv(mqtest.EnvBrokers, "")
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
