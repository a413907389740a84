package produce

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSlotsBlockWhenFullUntilReleased(t *testing.T) {
	s := newSlots(2)
	ctx := context.Background()
	require.NoError(t, s.acquire(ctx, nil))
	require.NoError(t, s.acquire(ctx, nil))
	assert.False(t, s.tryAcquire(), "full")

	got := make(chan error, 1)
	go func() { got <- s.acquire(ctx, nil) }()
	require.Eventually(t, func() bool { return s.waiting.Load() == 1 }, 10*time.Second, time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("acquired while full: %v", err)
	default:
	}
	s.release(1)
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("release did not wake the waiter")
	}
	assert.EqualValues(t, 2, s.used.Load())
	s.release(2)
	assert.EqualValues(t, 0, s.used.Load())
}

func TestSlotsWaitEndsWithContextOrClosing(t *testing.T) {
	s := newSlots(1)
	require.NoError(t, s.acquire(context.Background(), nil))

	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- s.acquire(ctx, nil) }()
	require.Eventually(t, func() bool { return s.waiting.Load() == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-got, context.Canceled)

	closing := make(chan struct{})
	go func() { got <- s.acquire(context.Background(), closing) }()
	require.Eventually(t, func() bool { return s.waiting.Load() == 1 }, 10*time.Second, time.Millisecond)
	close(closing)
	require.ErrorIs(t, <-got, ErrClosed)
	assert.EqualValues(t, 1, s.used.Load(), "a wait that ended took no slot")
	assert.EqualValues(t, 0, s.waiting.Load())
}

// Many goroutines taking and freeing slots (freed in bulk, as the engine
// frees a batch's) never hold more than the limit and all finish: no
// wake-up is lost.
func TestSlotsConcurrentNeverExceedNorLoseWakeups(t *testing.T) {
	const limit, workers, each = 8, 16, 2000
	s := newSlots(limit)
	var held, peak atomic.Int64
	toFree := make(chan int, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				require.NoError(t, s.acquire(context.Background(), nil))
				n := held.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				toFree <- 1
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	freed := 0
	for freed < workers*each {
		// Free whatever is held, in one release like a batch's.
		n := 0
		for more := true; more; {
			select {
			case k := <-toFree:
				n += k
			default:
				more = false
			}
		}
		if n == 0 {
			select {
			case k := <-toFree:
				n = k
			case <-time.After(10 * time.Second):
				t.Fatalf("stuck with %d of %d freed, %d waiting", freed, workers*each, s.waiting.Load())
			}
		}
		held.Add(-int64(n))
		s.release(n)
		freed += n
	}
	<-done
	assert.LessOrEqual(t, peak.Load(), int64(limit))
	assert.EqualValues(t, 0, s.used.Load())
}
