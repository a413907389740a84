package mqprom_test

import (
	"context"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cycle is one message sent and one consumed through one handler.
func cycle(o mq.Observer, ctx context.Context, info mq.MessageInfo) {
	sctx, _ := o.SendStarted(ctx, "orders", nil)
	o.SendFinished(sctx, "orders", 1, 42, time.Millisecond, nil)
	pctx := o.ProcessStarted(ctx, info)
	o.HandlerFinished(pctx, info, "persist", 1, time.Millisecond, nil)
	o.ProcessFinished(pctx, info, mq.OutcomeHandled, time.Millisecond, nil)
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	o, err := mqprom.New(prometheus.NewRegistry())
	require.NoError(t, err)
	info := mq.MessageInfo{Topic: "orders", Partition: 1, Offset: 42, Group: "g"}
	ctx := context.Background()
	assert.Zero(t, testing.AllocsPerRun(1000, func() { cycle(o, ctx, info) }))
}

// BenchmarkObserver measures what the observer adds per message sent and
// consumed through one handler, against mq.NopObserver.
func BenchmarkObserver(b *testing.B) {
	o, err := mqprom.New(prometheus.NewRegistry())
	require.NoError(b, err)
	for _, c := range []struct {
		name string
		obs  mq.Observer
	}{{"nop", mq.NopObserver{}}, {"prometheus", o}} {
		b.Run(c.name, func(b *testing.B) {
			info := mq.MessageInfo{Topic: "orders", Partition: 1, Offset: 42, Group: "g"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				cycle(c.obs, ctx, info)
			}
		})
	}
}
