package header

import (
	"testing"

	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/apiversions"
	"github.com/segmentio/kafka-go/protocol/createtopics"
	"github.com/segmentio/kafka-go/protocol/fetch"
	"github.com/segmentio/kafka-go/protocol/heartbeat"
	"github.com/segmentio/kafka-go/protocol/initproducerid"
	"github.com/segmentio/kafka-go/protocol/joingroup"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/protocol/produce"
	"github.com/segmentio/kafka-go/protocol/rawproduce"
	"github.com/segmentio/kafka-go/protocol/syncgroup"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The first flexible versions of the Kafka protocol (the "flexibleVersions"
// of its message definitions), for APIs kafka-go types; -1: none within
// kafka-go's versions.
func TestResponseFlexible(t *testing.T) {
	for _, tc := range []struct {
		req   protocol.Message
		first int16
	}{
		{&heartbeat.Request{}, 4},
		{&joingroup.Request{}, 6},
		{&syncgroup.Request{}, 4},
		{&initproducerid.Request{}, 2},
		{&createtopics.Request{}, 5},
		{&fetch.Request{}, -1},      // flexible from v12, kafka-go stops at v11
		{&produce.Request{}, -1},    // flexible from v9, kafka-go stops at v8
		{&rawproduce.Request{}, -1}, // likewise
		{&metadata.Request{}, -1},   // flexible from v9, kafka-go stops at v8
		{&apiversions.Request{}, -1},
	} {
		key := tc.req.ApiKey()
		for v := key.MinVersion(); v <= key.MaxVersion(); v++ {
			want := tc.first >= 0 && v >= tc.first
			assert.Equal(t, want, ResponseFlexible(tc.req, v), "%s v%d", key, v)
		}
	}
}

func TestSkipTaggedFields(t *testing.T) {
	rest, err := SkipTaggedFields([]byte{0, 9, 9})
	require.NoError(t, err)
	assert.Equal(t, []byte{9, 9}, rest)

	// Two fields: tag 1 with 2 bytes, tag 200 (a two-byte varint) with 1.
	rest, err = SkipTaggedFields([]byte{2, 1, 2, 0xa, 0xb, 0xc8, 0x01, 1, 0xc, 7})
	require.NoError(t, err)
	assert.Equal(t, []byte{7}, rest)

	for _, bad := range [][]byte{nil, {1}, {1, 1, 5, 0}, {0x80}} {
		_, err := SkipTaggedFields(bad)
		assert.ErrorIs(t, err, ErrMalformed, "%v", bad)
	}
}
