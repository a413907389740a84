// Package header knows the one thing about Kafka message headers that
// kafka-go's protocol package keeps to itself: whether a version of an API
// is "flexible" (KIP-482), which decides whether the response header carries
// a tagged-field buffer after the correlation id. Package wire needs it to
// hand back raw response bodies, package wiretest to write them.
package header

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/segmentio/kafka-go/protocol"
)

// firstFlexible caches, per request Go type, the first flexible version
// (-1: none).
var firstFlexible sync.Map // reflect.Type → int16

// ResponseFlexible reports whether the response to req at version has a
// flexible header. It follows kafka-go's own rule (protocol.makeTypes): a
// message type is flexible from the lowest version of any top-level field
// tagged "tag" or "tag=N" (every flexible kafka-go type has such a `_`
// field). Request and response of an API become flexible at the same
// version. ApiVersions is the exception the protocol makes: its response
// header is never flexible, so that any client can read it.
func ResponseFlexible(req protocol.Message, version int16) bool {
	if req.ApiKey() == protocol.ApiVersions {
		return false
	}
	t := reflect.TypeOf(req)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	v, ok := firstFlexible.Load(t)
	if !ok {
		v, _ = firstFlexible.LoadOrStore(t, scan(t))
	}
	first := v.(int16)
	return first >= 0 && version >= first
}

// scan returns the lowest min version of a top-level field whose kafka tag
// marks the type flexible, or -1.
func scan(t reflect.Type) int16 {
	first := int16(-1)
	if t.Kind() != reflect.Struct {
		return first
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.PkgPath != "" && f.Name != "_" {
			continue // kafka-go skips unexported fields other than `_`
		}
		for _, alt := range strings.Split(f.Tag.Get("kafka"), "|") {
			lo, tagged := int16(-1), false
			for _, opt := range strings.Split(alt, ",") {
				switch {
				case strings.HasPrefix(opt, "min=v"):
					n, err := strconv.ParseInt(opt[len("min=v"):], 10, 16)
					if err == nil {
						lo = int16(n)
					}
				case opt == "tag" || strings.HasPrefix(opt, "tag="):
					tagged = true
				}
			}
			if tagged && lo >= 0 && (first < 0 || lo < first) {
				first = lo
			}
		}
	}
	return first
}

// ErrMalformed reports a tagged-field buffer that runs past its data.
var ErrMalformed = errors.New("malformed tagged fields")

// SkipTaggedFields returns b without the tagged-field buffer it starts with
// (an unsigned varint count, then per field an unsigned varint tag, an
// unsigned varint size and size bytes).
func SkipTaggedFields(b []byte) ([]byte, error) {
	n, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for ; n > 0; n-- {
		if _, b, err = uvarint(b); err != nil { // tag
			return nil, err
		}
		var size uint64
		if size, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if size > uint64(len(b)) {
			return nil, ErrMalformed
		}
		b = b[size:]
	}
	return b, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	var x uint64
	for i, s := 0, uint(0); i < len(b) && i < 10; i, s = i+1, s+7 {
		c := b[i]
		x |= uint64(c&0x7f) << s
		if c < 0x80 {
			return x, b[i+1:], nil
		}
	}
	return 0, nil, ErrMalformed
}
