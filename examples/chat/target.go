package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/mqkit/mq"
)

// S3Config names the S3 bucket the "backup" handler writes to instead of
// the local file. It is used when Bucket is set.
type S3Config struct {
	Endpoint  string // e.g. http://127.0.0.1:8333 (scripts/s3/start.sh); empty: AWS S3
	Bucket    string // created if missing
	Prefix    string // key prefix of the objects
	Anonymous bool   // unsigned requests (a local SeaweedFS); else the AWS credential chain
}

// backupTarget is where the "backup" handler writes, and how the run counts
// what it wrote.
type backupTarget interface {
	// Handler is the consumer's "backup" handler.
	Handler() mq.Handler[MessageEvent]
	// Count reads back the run's backed-up messages: how many records hold
	// one, and how many distinct messages they are.
	Count(ctx context.Context) (records, distinct int, err error)
	// String says where the backup goes, for the log.
	String() string
	Close() error
}

// openBackupTarget opens the S3 backup when cfg names a bucket, else the
// local JSON-lines file in the data directory.
func openBackupTarget(ctx context.Context, cfg Config, runPrefix string) (backupTarget, error) {
	if cfg.S3.Bucket != "" {
		return openS3Target(ctx, cfg.S3, cfg.Topic, runPrefix)
	}
	path := filepath.Join(cfg.DataDir, backupFile)
	b, err := OpenBackup(path)
	if err != nil {
		return nil, err
	}
	return &fileTarget{b: b, path: path, counter: NewBackupCounter(path, runPrefix)}, nil
}

// fileTarget is the local JSON-lines backup file.
type fileTarget struct {
	b       *Backup
	path    string
	counter *BackupCounter
}

func (f *fileTarget) Handler() mq.Handler[MessageEvent] {
	return mq.HandlerFunc[MessageEvent](f.b.Append)
}

func (f *fileTarget) Count(context.Context) (int, int, error) { return f.counter.Count() }

func (f *fileTarget) String() string { return fmt.Sprintf("file %s", f.path) }

func (f *fileTarget) Close() error { return f.b.Close() }
