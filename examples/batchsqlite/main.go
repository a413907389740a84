// Command batchsqlite shows a batch handler: a consumer hands each
// partition's messages over in batches of up to 100, and the handler writes
// each batch to SQLite in one transaction. A reading that is not valid ends
// its batch early: the readings before it are committed in the
// transaction, and the handler reports mq.BatchFailedAt so that the
// consumer commits exactly those offsets, sends the bad reading through its
// recoverer (here: skip it, logged), and hands the rest over again.
//
// It uses an in-process Kafka broker unless KAFKA_BROKERS names a cluster:
//
//	go run ./examples/batchsqlite
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	_ "github.com/ncruces/go-sqlite3/driver" // SQLite (compiled to Go), registered as "sqlite3"
)

// Reading is one temperature reading of a sensor.
type Reading struct {
	Sensor  string  `json:"sensor"`
	Seq     int     `json:"seq"`
	Celsius float64 `json:"celsius"`
}

// errInvalid marks readings that can never be stored.
var errInvalid = errors.New("invalid reading")

const topic = "sensor-readings"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	cluster, err := mqtest.NewCluster(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "batchsqlite:", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "batchsqlite")
	if err == nil {
		err = run(ctx, cluster.Addrs(), filepath.Join(dir, "readings.db"), 1000, os.Stdout)
		_ = os.RemoveAll(dir)
	}
	_ = cluster.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "batchsqlite:", err)
		os.Exit(1)
	}
}

// Store keeps readings in SQLite.
type Store struct {
	db *sql.DB
}

// OpenStore opens (creating if needed) the database at path.
func OpenStore(path string) (*Store, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer at a time
	_, err = db.Exec(`CREATE TABLE IF NOT EXISTS readings (
		part INTEGER NOT NULL, off INTEGER NOT NULL,
		sensor TEXT NOT NULL, seq INTEGER NOT NULL, celsius REAL NOT NULL,
		PRIMARY KEY (part, off));
	CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT, part INTEGER NOT NULL, size INTEGER NOT NULL)`)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// SaveBatch writes a batch of one partition in one transaction. Rows are
// keyed by partition and offset, so a redelivered batch (after a crash
// before the commit) overwrites what it wrote before. When a reading is not
// valid, the readings before it are committed and BatchFailedAt says where
// the batch stopped; the error is marked Permanent, as retrying cannot help.
func (s *Store) SaveBatch(ctx context.Context, msgs []mq.Message[Reading]) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err // the whole batch failed: retried by the consumer
	}
	defer func() { _ = tx.Rollback() }() // after Commit: does nothing
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO readings (part, off, sensor, seq, celsius) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer func() { _ = stmt.Close() }()
	failed := -1
	var failure error
	for i, m := range msgs {
		r := m.Value
		if r.Sensor == "" || math.IsNaN(r.Celsius) || r.Celsius < -273.15 {
			failed, failure = i, fmt.Errorf("%w: %+v at offset %d", errInvalid, r, m.Offset)
			break
		}
		if _, err := stmt.ExecContext(ctx, m.Partition, m.Offset, r.Sensor, r.Seq, r.Celsius); err != nil {
			return err
		}
	}
	stored := len(msgs)
	if failed >= 0 {
		stored = failed
	}
	if stored > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO batches (part, size) VALUES (?, ?)`, msgs[0].Partition, stored); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if failed >= 0 {
		return mq.BatchFailedAt(failed, mq.Permanent(failure))
	}
	return nil
}

// Counts returns the readings stored, the transactions that stored them,
// and the largest batch.
func (s *Store) Counts(ctx context.Context) (readings, batches, largest int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM readings), COUNT(*), COALESCE(MAX(size), 0) FROM batches`).
		Scan(&readings, &batches, &largest)
	return readings, batches, largest, err
}

// run creates the topic, produces n readings (every 250th one invalid) and
// consumes them into the database at dbPath, until every reading sent was
// handled; then it prints what was stored to out.
func run(ctx context.Context, brokers []string, dbPath string, n int, out io.Writer) error {
	if err := mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: topic, Partitions: 3}}); err != nil {
		return err
	}
	store, err := OpenStore(dbPath)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()

	producer, err := mq.NewProducer[Reading](brokers, topic)
	if err != nil {
		return err
	}
	msgs := make([]mq.Message[Reading], n)
	for i := range msgs {
		r := Reading{Sensor: fmt.Sprintf("sensor-%d", i%7), Seq: i, Celsius: 15 + float64(i%100)/10}
		if i%250 == 249 {
			r.Celsius = -300 // below absolute zero: never stored
		}
		msgs[i] = mq.Message[Reading]{Key: []byte(r.Sensor), Value: r}
	}
	results, err := producer.SendMessages(ctx, msgs...)
	if cerr := producer.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("producing: %w", err)
	}
	pending := make(map[int]int64) // partition -> last offset sent
	for _, r := range results {
		pending[r.Partition] = max(pending[r.Partition], r.Offset)
	}

	consumer, err := mq.NewKafkaConsumer[Reading](brokers, topic, "readings-to-sqlite",
		mq.WithBatchMaxMessages(100), mq.WithBatchLinger(20*time.Millisecond),
		mq.WithRecoverer(mq.SkipRecoverer())) // invalid readings are logged and skipped
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	done := func(m mq.Message[Reading]) {
		mu.Lock()
		defer mu.Unlock()
		if last, ok := pending[m.Partition]; ok && m.Offset >= last {
			delete(pending, m.Partition)
			if len(pending) == 0 {
				stop() // Run commits what was handled and returns nil
			}
		}
	}
	err = consumer.RegisterBatchHandlerFunc(func(ctx context.Context, msgs []mq.Message[Reading]) error {
		err := store.SaveBatch(ctx, msgs)
		var bf *mq.BatchFailedError
		switch {
		case err == nil:
			done(msgs[len(msgs)-1])
		case errors.As(err, &bf) && bf.Index == len(msgs)-1:
			done(msgs[bf.Index]) // the last one is skipped by the recoverer
		}
		return err
	}, mq.WithHandlerName("sqlite"))
	if err != nil {
		return err
	}
	if err := consumer.Run(ctx); err != nil {
		return fmt.Errorf("consuming: %w", err)
	}
	readings, batches, largest, err := store.Counts(context.Background())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "stored %d of %d readings in %d transactions (largest batch %d); %d invalid skipped\n",
		readings, n, batches, largest, consumer.Stats().Skipped)
	return nil
}
