package mqs3

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestObjectKey(t *testing.T) {
	require.Equal(t, "backups/chat/orders/3/00000000000000000100-00000000000000000199.jsonl",
		ObjectKey("backups/chat/", "orders", 3, 100, 199, false))
	require.Equal(t, "orders/0/00000000000000000000-09223372036854775807.jsonl.gz",
		ObjectKey("", "orders", 0, 0, 9223372036854775807, true))

	for _, prefix := range []string{"", "p", "a/b/"} {
		key := ObjectKey(prefix, "t.x-y_z", 11, 5, 7, true)
		o, ok := ParseObjectKey(prefix, key)
		require.True(t, ok, key)
		require.Equal(t, Object{Key: key, Topic: "t.x-y_z", Partition: 11, First: 5, Last: 7, Gzip: true}, o)
	}
	for _, bad := range []string{
		"t/1/00000000000000000005-00000000000000000007.json",
		"t/01/00000000000000000005-00000000000000000007.jsonl",
		"t/-1/00000000000000000005-00000000000000000007.jsonl",
		"t/1/5-7.jsonl",
		"t/1/00000000000000000007-00000000000000000005.jsonl", // last before first
		"t/1/x/00000000000000000005-00000000000000000007.jsonl",
		"other/t/1/00000000000000000005-00000000000000000007.jsonl", // other prefix
	} {
		_, ok := ParseObjectKey("", bad)
		if bad == "other/t/1/00000000000000000005-00000000000000000007.jsonl" {
			_, ok = ParseObjectKey("p", bad)
		}
		require.False(t, ok, bad)
	}
}

// TestListFromSortsBetweenStarts checks the StartAfter key: it sorts after
// every key of an object starting before from and before every key of one
// starting at from or later, whatever the extension.
func TestListFromSortsBetweenStarts(t *testing.T) {
	dir := partitionDir("p", "t", 4)
	keys := []string{
		ObjectKey("p", "t", 4, 0, 9, false),
		ObjectKey("p", "t", 4, 9, 20, true),
		ObjectKey("p", "t", 4, 9, 9, false),
		ObjectKey("p", "t", 4, 10, 10, false),
		ObjectKey("p", "t", 4, 10, 99, true),
		ObjectKey("p", "t", 4, 11, 12, false),
	}
	sort.Strings(keys)
	after := listFrom(dir, 10)
	for _, k := range keys {
		o, _ := ParseObjectKey("p", k)
		require.Equal(t, o.First >= 10, k > after, k)
	}
	require.Equal(t, "", listFrom(dir, 0))
}
