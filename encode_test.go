package mq

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ptrMarshaler has a pointer-receiver MarshalJSON: encoding/json calls it
// only on addressable values.
type ptrMarshaler struct{ V int }

func (*ptrMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"by pointer"`), nil }

// ptrText has a pointer-receiver MarshalText.
type ptrText struct{ V int }

func (*ptrText) MarshalText() ([]byte, error) { return []byte("by pointer"), nil }

// valMarshaler has a value-receiver MarshalJSON: called either way.
type valMarshaler struct{ V int }

func (valMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"by value"`), nil }

type plainEvent struct {
	ID    int64             `json:"id"`
	Name  string            `json:"name"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Inner struct{ A int }   `json:"inner"`
}

// checkEncode asserts that the producer's encoding of v is the JSON codec's,
// byte for byte, and whether it marshals through the record's pointer.
func checkEncode[T any](t *testing.T, v T, throughPointer bool) {
	t.Helper()
	p, err := NewProducer[T]([]string{"127.0.0.1:1"}, "t")
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	assert.Equal(t, throughPointer, p.jsonPtr)
	want, err := JSONCodec[T]{}.Encode(v)
	require.NoError(t, err)
	got, err := p.encode(&v)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}

// The default codec marshals the record's copy of a value through a pointer
// only where that gives the bytes JSONCodec.Encode gives: never where a
// pointer-receiver marshaler is reachable by value.
func TestProducerEncodesLikeTheJSONCodec(t *testing.T) {
	t.Run("plain struct", func(t *testing.T) {
		checkEncode(t, plainEvent{ID: 7, Name: "<a&b>", Tags: []string{"x"}, Attrs: map[string]string{"k": "v"}}, true)
	})
	t.Run("value marshaler", func(t *testing.T) { checkEncode(t, valMarshaler{V: 1}, true) })
	t.Run("string", func(t *testing.T) { checkEncode(t, "hello", true) })
	t.Run("any", func(t *testing.T) { checkEncode[any](t, ptrMarshaler{V: 1}, true) })
	t.Run("pointer field", func(t *testing.T) {
		checkEncode(t, struct{ P *ptrMarshaler }{P: &ptrMarshaler{V: 1}}, true)
	})
	t.Run("slice of pointer marshalers", func(t *testing.T) {
		checkEncode(t, []ptrMarshaler{{V: 1}}, true)
	})
	t.Run("pointer marshaler", func(t *testing.T) { checkEncode(t, ptrMarshaler{V: 1}, false) })
	t.Run("pointer text marshaler in a field", func(t *testing.T) {
		checkEncode(t, struct {
			ID int
			T  ptrText
		}{ID: 1, T: ptrText{V: 2}}, false)
	})
	t.Run("pointer marshaler in an array in a field", func(t *testing.T) {
		checkEncode(t, struct{ A [2]ptrMarshaler }{}, false)
	})
	t.Run("pointer marshaler in an embedded struct", func(t *testing.T) {
		type inner struct{ M ptrMarshaler }
		checkEncode(t, struct{ inner }{}, false)
	})
	t.Run("custom codec", func(t *testing.T) {
		p, err := NewProducer[plainEvent]([]string{"127.0.0.1:1"}, "t", WithCodec[plainEvent](CodecFuncs[plainEvent]{
			EncodeFunc: func(plainEvent) ([]byte, error) { return []byte("custom"), nil },
		}))
		require.NoError(t, err)
		defer func() { require.NoError(t, p.Close()) }()
		assert.False(t, p.jsonPtr)
		got, err := p.encode(&plainEvent{})
		require.NoError(t, err)
		assert.Equal(t, "custom", string(got))
	})
}

// Marshaling the record's copy through a pointer saves boxing the value:
// one allocation per message fewer than JSONCodec.Encode.
func TestProducerEncodeSavesTheBoxing(t *testing.T) {
	p, err := NewProducer[plainEvent]([]string{"127.0.0.1:1"}, "t")
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	v := &plainEvent{ID: 1, Name: "n"}
	viaPointer := mallocsPerRun(2000, func() { _, _ = p.encode(v) })
	viaValue := mallocsPerRun(2000, func() { _, _ = JSONCodec[plainEvent]{}.Encode(*v) })
	t.Logf("allocations per message: %.2f through the pointer, %.2f by value", viaPointer, viaValue)
	assert.InDelta(t, 1, viaValue-viaPointer, 0.5)
}

// mallocsPerRun is testing.AllocsPerRun without rounding down, with the GC
// off (it empties encoding/json's pool of encoders). The race detector drops
// a quarter of what is put in a sync.Pool, so a run allocates a refill now
// and then: rounded down, two averages one allocation apart could come out
// equal.
func mallocsPerRun(n int, f func()) float64 {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n)
}
