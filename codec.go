package mq

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
)

// Codec turns values of type T into message bytes and back. Implementations
// must be safe for concurrent use: a consumer decodes on one goroutine per
// partition and a producer encodes on the callers' goroutines.
//
// A Decode error makes the message a poison message: the consumer never
// crashes or silently skips it, it stops with a [*DecodeError] naming the
// topic, partition and offset (see [KafkaConsumer.Run]).
type Codec[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(data []byte) (T, error)
}

// JSONCodec encodes values with encoding/json. It is the default codec of
// [Producer] and [KafkaConsumer]. The zero value is ready to use.
type JSONCodec[T any] struct {
	// DisallowUnknownFields makes Decode reject objects with fields that T
	// does not have.
	DisallowUnknownFields bool
}

// Encode implements [Codec].
func (JSONCodec[T]) Encode(v T) ([]byte, error) {
	return json.Marshal(v)
}

// jsonThroughPointer reports whether json.Marshal gives the same bytes for a
// pointer to a value of type t as for the value itself, so that a producer
// may marshal the copy its record already holds instead of boxing the value
// (an allocation and a copy per message). It does unless a pointer-receiver
// MarshalJSON or MarshalText method is in reach: encoding/json calls those
// only on addressable values, and the value behind a pointer is addressable,
// along its struct fields and array elements. Values behind pointers,
// slices, maps and interfaces are addressable either way, or neither.
func jsonThroughPointer(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	for _, m := range [...]reflect.Type{jsonMarshalerType, textMarshalerType} {
		if pt.Implements(m) && !t.Implements(m) {
			return false
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if !jsonThroughPointer(t.Field(i).Type) {
				return false
			}
		}
	case reflect.Array:
		return jsonThroughPointer(t.Elem())
	}
	return true
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// Decode implements [Codec]. An empty or null payload is an error: it never
// silently becomes a zero value.
func (c JSONCodec[T]) Decode(data []byte) (T, error) {
	var v T
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return v, fmt.Errorf("mq: json: empty payload")
	}
	if bytes.Equal(trimmed, []byte("null")) {
		return v, fmt.Errorf("mq: json: null payload")
	}
	if !c.DisallowUnknownFields {
		err := json.Unmarshal(data, &v)
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, err
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return v, fmt.Errorf("mq: json: trailing data after value")
	}
	return v, nil
}

// BytesCodec passes raw bytes through unchanged. The zero value is ready to use.
type BytesCodec struct{}

// Encode implements [Codec]. The slice is not copied.
func (BytesCodec) Encode(v []byte) ([]byte, error) { return v, nil }

// Decode implements [Codec]. The returned slice is owned by the caller.
func (BytesCodec) Decode(data []byte) ([]byte, error) { return data, nil }

// StringCodec encodes strings as their UTF-8 bytes. The zero value is ready to use.
type StringCodec struct{}

// Encode implements [Codec].
func (StringCodec) Encode(v string) ([]byte, error) { return []byte(v), nil }

// Decode implements [Codec].
func (StringCodec) Decode(data []byte) (string, error) { return string(data), nil }

// CodecFuncs adapts a pair of functions to a [Codec].
type CodecFuncs[T any] struct {
	EncodeFunc func(T) ([]byte, error)
	DecodeFunc func([]byte) (T, error)
}

// Encode implements [Codec].
func (c CodecFuncs[T]) Encode(v T) ([]byte, error) { return c.EncodeFunc(v) }

// Decode implements [Codec].
func (c CodecFuncs[T]) Decode(data []byte) (T, error) { return c.DecodeFunc(data) }

var (
	_ Codec[struct{}] = JSONCodec[struct{}]{}
	_ Codec[[]byte]   = BytesCodec{}
	_ Codec[string]   = StringCodec{}
	_ Codec[int]      = CodecFuncs[int]{}
)
