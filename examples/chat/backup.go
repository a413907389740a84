package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/mqkit/mq"
)

// BackupLine is one line of the backup file: the event and where it was read.
type BackupLine struct {
	Partition int          `json:"partition"`
	Offset    int64        `json:"offset"`
	Event     MessageEvent `json:"event"`
}

// Backup appends every message as a JSON line to a file. It is safe for
// concurrent use, and several processes may append to the same file. Appending
// is not idempotent: a redelivered message is written again, which is why
// [BackupCounter] counts distinct IDs.
type Backup struct {
	mu sync.Mutex
	f  *os.File
}

// OpenBackup opens path for appending, creating it if needed.
func OpenBackup(path string) (*Backup, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Backup{f: f}, nil
}

// Append is the "backup" handler: it writes the message as one JSON line.
// Each line is one write(2) on an O_APPEND file, so lines never interleave.
// It does not fsync; a backup that must survive power loss would.
func (b *Backup) Append(_ context.Context, msg mq.Message[MessageEvent]) error {
	line, err := json.Marshal(BackupLine{Partition: msg.Partition, Offset: msg.Offset, Event: msg.Value})
	if err != nil {
		return err
	}
	line = append(line, '\n')
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return fs.ErrClosed
	}
	if _, err := b.f.Write(line); err != nil {
		return fmt.Errorf("backup %s: %w", msg.Value.ID, err)
	}
	return nil
}

// Close closes the file.
func (b *Backup) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return nil
	}
	err := b.f.Close()
	b.f = nil
	return err
}

// BackupCounter counts the messages of one run in a backup file. Each call
// reads only what was appended since the previous one, so polling it is
// cheap. It is not safe for concurrent use.
type BackupCounter struct {
	path   string
	prefix string
	off    int64 // bytes consumed: always the end of a complete line
	lineNo int
	lines  int
	ids    map[string]struct{}
}

// NewBackupCounter returns a counter of the lines of the backup file at path
// whose message ID starts with prefix.
func NewBackupCounter(path, prefix string) *BackupCounter {
	return &BackupCounter{path: path, prefix: prefix, ids: make(map[string]struct{})}
}

// Count reads the lines appended since the last call and returns how many
// lines so far hold a message of the run, and how many distinct messages
// they are. A missing file counts as empty; a line still being written is
// left for the next call.
func (c *BackupCounter) Count() (lines, distinct int, err error) {
	f, err := os.Open(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(c.off, io.SeekStart); err != nil {
		return 0, 0, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return 0, 0, err
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		c.lineNo++
		var l BackupLine
		if err := json.Unmarshal(data[:i], &l); err != nil {
			return c.lines, len(c.ids), fmt.Errorf("%s:%d: %w", c.path, c.lineNo, err)
		}
		if strings.HasPrefix(l.Event.ID, c.prefix) {
			c.lines++
			c.ids[l.Event.ID] = struct{}{}
		}
		c.off += int64(i + 1)
		data = data[i+1:]
	}
	return c.lines, len(c.ids), nil
}

// CountBackup counts the lines of the backup file at path whose message ID
// starts with prefix, and the distinct such IDs.
func CountBackup(path, prefix string) (lines, distinct int, err error) {
	return NewBackupCounter(path, prefix).Count()
}
