// Package integration runs mq's behaviour tests against a real broker: the
// embedded one by default, or the one named by KAFKA_BROKERS / MQ_TEST_BROKER
// (see package mqtest).
package integration

import (
	"os"
	"testing"

	"github.com/mqkit/mq/mqtest"
	"go.uber.org/goleak"
)

var cluster *mqtest.Cluster

func TestMain(m *testing.M) {
	c, err := mqtest.NewCluster(contextBackground())
	if err != nil {
		println("mq integration: cannot start a broker:", err.Error())
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	_ = c.Close()
	if code == 0 {
		if err := goleak.Find(goleakOptions()...); err != nil {
			println("goleak:", err.Error())
			code = 1
		}
	}
	os.Exit(code)
}
