package mq

import (
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/stretchr/testify/require"
)

// A recovery publisher asked for after the session closed its publishers (a
// handler that outlived the shutdown timeout, then failed) is refused:
// one made then would never be closed.
func TestPublisherAfterCloseIsRefused(t *testing.T) {
	c, err := NewKafkaConsumer[int]([]string{"127.0.0.1:1"}, "t", "g")
	require.NoError(t, err)
	defer c.Close()
	s := &session[int]{c: c, dialer: &kafka.Dialer{}}
	p, err := s.publisher("t.dlt")
	require.NoError(t, err)
	require.NotNil(t, p)
	s.closePublishers()
	_, err = s.publisher("t.dlt")
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.publisher("t.retry.1")
	require.ErrorIs(t, err, ErrClosed)
	require.Empty(t, s.publishers)
}
