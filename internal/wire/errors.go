package wire

import (
	"errors"
	"fmt"
)

// ErrConnClosed is wrapped by every error that comes from a connection that
// is broken or closed: the write or read error that broke it (io.EOF, a
// reset, a timeout) stays in the chain next to it, and so does
// os.ErrDeadlineExceeded when a response was overdue. A request that failed
// with ErrConnClosed may or may not have reached the broker; it can be
// retried on a new connection.
var ErrConnClosed = errors.New("wire: connection closed")

// ErrPoolClosed is returned by [Pool.Conn] after [Pool.Close].
var ErrPoolClosed = errors.New("wire: pool closed")

// connClosed builds the error that fails a connection and everything in
// flight on it.
func connClosed(addr, why string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: %s: %s", ErrConnClosed, addr, why)
	}
	return fmt.Errorf("%w: %s: %s: %w", ErrConnClosed, addr, why, cause)
}
