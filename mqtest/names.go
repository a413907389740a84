package mqtest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// maxPrefix keeps names well inside Kafka's 249-character topic name limit.
const maxPrefix = 200

// UniqueName returns prefix followed by a dash and a random suffix, usable
// as a Kafka topic or consumer group name. Characters Kafka does not allow
// in topic names (anything but ASCII letters, digits, '.', '_' and '-') are
// replaced with '-', and long prefixes are shortened. An empty prefix
// becomes "mqtest". Passing t.Name() gives readable, collision-free names
// for subtests.
func UniqueName(prefix string) string {
	var b strings.Builder
	for _, r := range prefix {
		if b.Len() >= maxPrefix {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	p := b.String()
	if p == "" {
		p = "mqtest"
	}
	return fmt.Sprintf("%s-%012x", p, rand.Uint64()&(1<<48-1))
}
