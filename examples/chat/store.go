package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mqkit/mq"
	"github.com/ncruces/go-sqlite3"
	_ "github.com/ncruces/go-sqlite3/driver" // SQLite (compiled to Go), registered as "sqlite3"
)

// schema creates the messages table. The Kafka coordinates are kept for
// tracing a row back to its record.
const schema = `
CREATE TABLE IF NOT EXISTS messages (
	id              TEXT PRIMARY KEY,
	conversation_id TEXT NOT NULL,
	sender_id       TEXT NOT NULL,
	body            TEXT NOT NULL,
	sent_at         TEXT NOT NULL,
	kafka_partition INTEGER NOT NULL,
	kafka_offset    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, sent_at);
`

// upsert inserts a message unless a row with its ID exists: a redelivered
// message (at-least-once delivery) changes nothing.
const upsert = `
INSERT INTO messages (id, conversation_id, sender_id, body, sent_at, kafka_partition, kafka_offset)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`

// Store persists chat messages in an embedded SQLite database. It is safe for
// concurrent use: the consumer calls Persist from one goroutine per partition.
type Store struct {
	db *sql.DB
}

// OpenStore opens (creating if needed) the SQLite database at path.
func OpenStore(path string) (*Store, error) {
	// WAL lets readers (an operator, the tests) run beside the writer;
	// synchronous=NORMAL is durable across application crashes, which is
	// what at-least-once delivery needs here. Transactions take the write
	// lock up front (_txlock=immediate) so that a concurrent writer makes
	// them wait for busy_timeout instead of failing with SQLITE_BUSY.
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// SQLite has one writer at a time; one connection avoids SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	// Two connections opening a brand-new file at once can fail with
	// SQLITE_BUSY while one switches it to WAL, without waiting for
	// busy_timeout; that resolves itself, so try again for a while.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = createSchema(db)
		if err == nil {
			return &Store{db: db}, nil
		}
		if !isBusy(err) || time.Now().After(deadline) {
			_ = db.Close()
			return nil, fmt.Errorf("create schema in %s: %w", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	return errors.Is(err, sqlite3.BUSY) // an *sqlite3.Error or a bare code
}

// createSchema creates the tables in one immediate transaction.
func createSchema(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(schema); err != nil {
		return err
	}
	return tx.Commit()
}

// Persist is the "persist" handler: it upserts the message by its ID.
func (s *Store) Persist(ctx context.Context, msg mq.Message[MessageEvent]) error {
	ev := msg.Value
	if ev.ID == "" {
		return fmt.Errorf("message %s[%d]@%d has no ID", msg.Topic, msg.Partition, msg.Offset)
	}
	_, err := s.db.ExecContext(ctx, upsert, ev.ID, ev.ConversationID, ev.SenderID, ev.Body,
		ev.SentAt.UTC().Format(time.RFC3339Nano), msg.Partition, msg.Offset)
	if err != nil {
		return fmt.Errorf("persist %s: %w", ev.ID, err)
	}
	return nil
}

// Count returns the number of stored messages whose ID starts with prefix
// (all of them for an empty prefix).
func (s *Store) Count(ctx context.Context, prefix string) (int, error) {
	var n int
	// GLOB is case-sensitive, so it can use the primary key index.
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE id GLOB ?`, globPrefix(prefix)).Scan(&n)
	return n, err
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// globPrefix returns a GLOB pattern matching strings that start with prefix.
func globPrefix(prefix string) string {
	out := make([]byte, 0, len(prefix)+1)
	for i := 0; i < len(prefix); i++ {
		switch c := prefix[i]; c {
		case '*', '?', '[':
			out = append(out, '[', c, ']')
		default:
			out = append(out, c)
		}
	}
	return string(append(out, '*'))
}
