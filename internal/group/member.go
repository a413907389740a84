package group

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"go.uber.org/zap"
)

// Config configures a [Membership].
type Config struct {
	// Network gives connections to the coordinator; Client finds it and
	// fetches the metadata the leader assigns from.
	Network wire.Network
	Client  *wire.Client
	// Group is the group ID.
	Group string
	// InstanceID makes the member static (KIP-345, group.instance.id): a
	// restart within the session timeout gets the member's partitions back
	// without a rebalance, and Close does not leave the group. "" for a
	// dynamic member.
	InstanceID string
	// Rack is the member's rack (client.rack), sent in its subscription.
	Rack string
	// Topics the member subscribes to.
	Topics []string
	// Assignors are the protocols the member offers, in order of
	// preference; at least one.
	Assignors []Assignor
	// SessionTimeout, RebalanceTimeout and HeartbeatInterval are the
	// classic group timings (all required).
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	// RequestTimeout bounds OffsetCommit, OffsetFetch, SyncGroup,
	// Heartbeat and LeaveGroup requests (default 10s). JoinGroup is
	// bounded by RebalanceTimeout plus RequestTimeout.
	RequestTimeout time.Duration
	// WatchInterval is how often the leader checks the partition counts of
	// the group's topics and rejoins when they changed (default 5s).
	WatchInterval time.Duration
	// Logger receives the member's logs (nil: none). They do not name the
	// group: the consumer's logger does, for all of its logs.
	Logger *zap.Logger
}

// Errors of a member's life.
var (
	// ErrRebalance ends a generation when the group rebalances: the
	// coordinator answered a heartbeat with REBALANCE_IN_PROGRESS, the
	// leader saw the metadata change, or a rejoin was requested. Offsets
	// can still be committed through the generation until the member
	// rejoins.
	ErrRebalance = errors.New("group: rebalance in progress")
	// ErrFenced ends a generation the coordinator no longer knows
	// (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION): commits through it fail, its
	// partitions are lost rather than revoked.
	ErrFenced = errors.New("group: member fenced from its generation")
	// ErrMemberClosed is returned by calls on a closed member.
	ErrMemberClosed = errors.New("group: member closed")
)

// Generation is one generation of the group as this member joined it.
type Generation struct {
	// ID is the generation ID; MemberID the member's ID in it.
	ID       int32
	MemberID string
	// Protocol is the assignor the group chose.
	Protocol string
	// Cooperative is true when Protocol is the cooperative-sticky one:
	// the member keeps the partitions that stay and revokes only the others.
	Cooperative bool
	// Leader is true when this member computed the assignment.
	Leader bool
	// Assigned are the member's partitions.
	Assigned []TopicPartition

	ctx    context.Context
	cancel context.CancelCauseFunc
	counts map[string]int32 // leader: the partition counts it assigned
}

// Done is closed when the generation ends: a rebalance ([ErrRebalance]),
// the member being fenced ([ErrFenced]), or the member closing.
func (g *Generation) Done() <-chan struct{} { return g.ctx.Done() }

// Err says why the generation ended (nil while it lasts).
func (g *Generation) Err() error {
	if g.ctx.Err() == nil {
		return nil
	}
	return context.Cause(g.ctx)
}

// Fenced reports whether the generation ended because the coordinator no
// longer knows it (commits through it fail).
func (g *Generation) Fenced() bool { return errors.Is(g.Err(), ErrFenced) }

func (g *Generation) end(cause error) { g.cancel(cause) }

// Membership is this process's member of a classic consumer group: it joins (JoinGroup,
// SyncGroup, computing the assignment when it leads), heartbeats from its
// first join until Close — including while its owner drains revoked
// partitions — follows coordinator moves, and commits and fetches offsets
// through its generation. It is safe for concurrent use.
type Membership struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex
	memberID string
	gen      *Generation // the current generation, nil before the first
	joining  bool        // a JoinGroup/SyncGroup is in flight: no heartbeats
	coord    string      // the coordinator's address, "" when unknown
	closed   bool

	stop   chan struct{} // closed by Close: ends the heartbeat loop
	hbOnce sync.Once
	hbDone chan struct{}
}

// NewMembership returns a member that joins nothing until [Membership.Join].
func NewMembership(cfg Config) (*Membership, error) {
	switch {
	case cfg.Network == nil || cfg.Client == nil:
		return nil, errors.New("group: member needs a network and a client")
	case cfg.Group == "":
		return nil, errors.New("group: empty group id")
	case len(cfg.Assignors) == 0:
		return nil, errors.New("group: no assignor")
	case cfg.SessionTimeout <= 0 || cfg.RebalanceTimeout <= 0 || cfg.HeartbeatInterval <= 0:
		return nil, errors.New("group: session timeout, rebalance timeout and heartbeat interval must be > 0")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Membership{cfg: cfg, log: log, stop: make(chan struct{}), hbDone: make(chan struct{})}, nil
}

// MemberID returns the member ID the coordinator gave ("" before).
func (m *Membership) MemberID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.memberID
}

// Rejoin ends gen with [ErrRebalance] if it is still current, so that the
// owner rejoins (after a cooperative revocation, KIP-429).
func (m *Membership) Rejoin(gen *Generation) {
	gen.end(ErrRebalance)
}

// Close stops heartbeating and, for a dynamic member, leaves the group
// (LeaveGroup), so that the others rebalance at once rather than after the
// session timeout. A static member does not leave: restarted with the same
// instance ID within the session timeout, it gets its partitions back.
func (m *Membership) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stop)
	gen, id := m.gen, m.memberID
	started := m.gen != nil
	m.mu.Unlock()
	if started {
		<-m.hbDone
	}
	if gen != nil {
		gen.end(ErrMemberClosed)
	}
	if id == "" || m.cfg.InstanceID != "" {
		return nil
	}
	return m.leave(ctx, id)
}

// coordinator returns the coordinator's address, finding it if unknown.
func (m *Membership) coordinator(ctx context.Context) (string, error) {
	m.mu.Lock()
	addr := m.coord
	m.mu.Unlock()
	if addr != "" {
		return addr, nil
	}
	_, addr, err := m.cfg.Client.FindCoordinator(ctx, m.cfg.Group, wire.CoordinatorGroup)
	if err != nil {
		return "", fmt.Errorf("group %q: finding the coordinator: %w", m.cfg.Group, err)
	}
	m.mu.Lock()
	m.coord = addr
	m.mu.Unlock()
	return addr, nil
}

// coordinatorGone forgets the coordinator after NOT_COORDINATOR,
// COORDINATOR_NOT_AVAILABLE or a broken connection: the next request finds
// it again.
func (m *Membership) coordinatorGone(addr string) {
	m.mu.Lock()
	if m.coord == addr {
		m.coord = ""
	}
	m.mu.Unlock()
}

// conn returns a group connection to the coordinator.
func (m *Membership) conn(ctx context.Context) (*wire.Conn, error) {
	addr, err := m.coordinator(ctx)
	if err != nil {
		return nil, err
	}
	c, err := m.cfg.Network.Conn(ctx, addr, wire.PurposeGroup)
	if err != nil {
		m.coordinatorGone(addr)
		return nil, fmt.Errorf("group %q: coordinator %s: %w", m.cfg.Group, addr, err)
	}
	return c, nil
}
