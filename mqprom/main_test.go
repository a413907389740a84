package mqprom_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/mqkit/mq/mqtest"
	"go.uber.org/goleak"
)

// cluster is the broker shared by the tests: the embedded one unless
// MQ_TEST_BROKER or KAFKA_BROKERS say otherwise (see package mqtest).
var cluster *mqtest.Cluster

func TestMain(m *testing.M) {
	c, err := mqtest.NewCluster(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqprom: cannot start a broker:", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	_ = c.Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
