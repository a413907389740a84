// Package offsets tracks, for one partition, which fetched offsets have been
// fully processed and where the contiguous commit point lies.
package offsets

import "sync"

// Tracker records offsets in the order they are fetched (strictly increasing)
// and marks them done in any order. The commit point is the offset after the
// longest fully processed prefix: everything below it is done, so committing
// it never skips unfinished work. The commit point never moves backwards.
//
// Tracker is safe for concurrent use.
type Tracker struct {
	mu     sync.Mutex
	ring   []entry // in-flight offsets, in fetch order, ring buffer
	head   int     // index of the oldest entry
	n      int     // number of entries
	gaps   int     // entries that are Advance placeholders
	commit int64   // next offset to commit; -1 until known
}

type entry struct {
	offset int64
	done   bool
	gap    bool // an Advance placeholder, not a message
}

// New returns a tracker whose commit point starts at start (the committed
// offset the partition was assigned with), or -1 when unknown.
func New(start int64) *Tracker {
	return &Tracker{commit: start, ring: make([]entry, 64)}
}

// Begin registers a fetched offset as in flight. Offsets must be registered in
// strictly increasing order; an offset at or below the last registered one is
// ignored and Begin reports false.
func (t *Tracker) Begin(offset int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n > 0 && offset <= t.ring[(t.head+t.n-1)%len(t.ring)].offset {
		return false
	}
	if t.n == 0 && t.commit >= 0 && offset < t.commit {
		return false
	}
	t.push(entry{offset: offset})
	return true
}

// Advance records that no message exists below next other than those
// registered with Begin: the offsets in between (transaction markers,
// records of aborted transactions, offsets compaction removed) need no
// processing. Once every registered offset below next is done, the commit
// point moves to next. An offset at or below the last registered one, or
// below the commit point, changes nothing.
func (t *Tracker) Advance(next int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	last := next - 1
	if t.n == 0 {
		if last+1 > t.commit {
			t.commit = last + 1
		}
		return
	}
	if last <= t.ring[(t.head+t.n-1)%len(t.ring)].offset {
		return
	}
	// A processed placeholder for the gap: the commit point passes it as
	// soon as everything before it is done.
	t.push(entry{offset: last, done: true, gap: true})
	t.gaps++
}

func (t *Tracker) push(e entry) {
	if t.n == len(t.ring) {
		grown := make([]entry, len(t.ring)*2)
		for i := 0; i < t.n; i++ {
			grown[i] = t.ring[(t.head+i)%len(t.ring)]
		}
		t.ring, t.head = grown, 0
	}
	t.ring[(t.head+t.n)%len(t.ring)] = e
	t.n++
}

// Done marks offset as fully processed and returns the new commit point.
func (t *Tracker) Done(offset int64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	// In-order processing finishes the head; search from there.
	for i := 0; i < t.n; i++ {
		e := &t.ring[(t.head+i)%len(t.ring)]
		if e.offset == offset {
			e.done = true
			break
		}
		if e.offset > offset {
			break
		}
	}
	for t.n > 0 {
		e := t.ring[t.head]
		if !e.done {
			break
		}
		if e.offset+1 > t.commit {
			t.commit = e.offset + 1
		}
		if e.gap {
			t.gaps--
		}
		t.head = (t.head + 1) % len(t.ring)
		t.n--
	}
	return t.commit
}

// CommitPoint returns the offset to commit (the next offset to consume after
// the processed prefix), or -1 when nothing has been processed and no start
// offset is known.
func (t *Tracker) CommitPoint() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.commit
}

// InFlight returns the number of offsets registered with Begin not yet
// released by the commit point.
func (t *Tracker) InFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n - t.gaps
}

// Reset forgets every registered offset and moves the commit point to
// commit, backwards too: the partition's consumption restarts there (a
// seek). The offsets registered before must not be marked done
// afterwards: their work is to be finished (or abandoned) first.
func (t *Tracker) Reset(commit int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.ring)
	t.head, t.n, t.gaps = 0, 0, 0
	t.commit = commit
}
