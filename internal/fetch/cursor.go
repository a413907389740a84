package fetch

import "encoding/binary"

// cursor reads big-endian protocol fields from a byte slice. The first read
// past the end sets ok to false; later reads return zero values, so a decoder
// checks ok once per structure rather than after every field.
type cursor struct {
	b  []byte
	ok bool
}

func newCursor(b []byte) cursor { return cursor{b: b, ok: true} }

// take returns the next n bytes, or nil (and ok false) when fewer remain.
func (c *cursor) take(n int) []byte {
	if n < 0 || n > len(c.b) {
		c.ok = false
		c.b = nil
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) int16() int16 {
	if v := c.take(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (c *cursor) int32() int32 {
	if v := c.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (c *cursor) int64() int64 {
	if v := c.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// count reads an array length and checks that n elements of at least minSize
// bytes each fit in what remains, so a hostile count cannot make the caller
// allocate more than the body's size. A null array (-1) has count 0.
func (c *cursor) count(minSize int) int {
	n := c.int32()
	if n < 0 {
		return 0
	}
	if int64(n)*int64(minSize) > int64(len(c.b)) {
		c.ok = false
		c.b = nil
		return 0
	}
	return int(n)
}

// string reads a non-nullable int16-length string.
func (c *cursor) string() string {
	n := c.int16()
	return string(c.take(int(n)))
}

// nullableBytes reads int32-length bytes; -1 is nil, 0 a non-nil empty slice.
// The result aliases the cursor's buffer.
func (c *cursor) nullableBytes() []byte {
	n := c.int32()
	if n < 0 {
		if n != -1 {
			c.ok = false
			c.b = nil
		}
		return nil
	}
	return c.take(int(n))
}
