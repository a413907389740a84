package group

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/joingroup"
	"github.com/segmentio/kafka-go/protocol/leavegroup"
	"github.com/segmentio/kafka-go/protocol/offsetcommit"
	"github.com/segmentio/kafka-go/protocol/syncgroup"
)

// fakeGroup is a scripted coordinator for a group of one member.
type fakeGroup struct {
	cl *wiretest.Cluster

	mu        sync.Mutex
	gen       int32
	joins     []*joingroup.Request
	leaves    []*leavegroup.Request
	commits   []*offsetcommit.Request
	hbCode    int16 // what heartbeats answer
	hbCount   atomic.Int32
	hbBrokers map[int32]int
	holdJoin  chan struct{} // when set, joins with a member ID wait for it
}

func newFakeGroup(t *testing.T) *fakeGroup {
	cl := wiretest.NewCluster(t, 2)
	cl.CreateTopic("t", 2)
	cl.SetCoordinator("g", 0)
	f := &fakeGroup{cl: cl, hbBrokers: map[int32]int{}}
	cl.Handle(protocol.JoinGroup, func(r *wiretest.Request) wiretest.Response {
		req := r.Msg.(*joingroup.Request)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.joins = append(f.joins, req)
		if req.MemberID == "" {
			return wiretest.Reply(&joingroup.Response{ErrorCode: 79, MemberID: "m-1", GenerationID: -1})
		}
		f.gen++
		res := wiretest.Reply(&joingroup.Response{GenerationID: f.gen, ProtocolName: req.Protocols[0].Name,
			LeaderID: req.MemberID, MemberID: req.MemberID,
			Members: []joingroup.ResponseMember{{MemberID: req.MemberID, GroupInstanceID: req.GroupInstanceID,
				Metadata: req.Protocols[0].Metadata}}})
		if f.holdJoin != nil {
			res = res.Until(f.holdJoin)
		}
		return res
	})
	cl.Handle(protocol.SyncGroup, func(r *wiretest.Request) wiretest.Response {
		req := r.Msg.(*syncgroup.Request)
		var a []byte
		for _, x := range req.Assignments {
			if x.MemberID == req.MemberID {
				a = x.Assignment
			}
		}
		return wiretest.Reply(&syncgroup.Response{Assignments: a})
	})
	cl.Handle(protocol.Heartbeat, func(r *wiretest.Request) wiretest.Response {
		f.mu.Lock()
		code := f.hbCode
		f.hbBrokers[r.Broker]++
		f.mu.Unlock()
		f.hbCount.Add(1)
		// throttle_time_ms, error_code: the schema's order (v1+).
		return wiretest.Raw(binary.BigEndian.AppendUint16([]byte{0, 0, 0, 0}, uint16(code)))
	})
	cl.Handle(protocol.LeaveGroup, func(r *wiretest.Request) wiretest.Response {
		f.mu.Lock()
		f.leaves = append(f.leaves, r.Msg.(*leavegroup.Request))
		f.mu.Unlock()
		// throttle, error, members [m-1, null, 0]
		return wiretest.Raw([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 'm', '-', '1', 0xff, 0xff, 0, 0})
	})
	cl.Handle(protocol.OffsetCommit, func(r *wiretest.Request) wiretest.Response {
		req := r.Msg.(*offsetcommit.Request)
		f.mu.Lock()
		f.commits = append(f.commits, req)
		f.mu.Unlock()
		res := &offsetcommit.Response{}
		for _, tp := range req.Topics {
			rt := offsetcommit.ResponseTopic{Name: tp.Name}
			for _, p := range tp.Partitions {
				rt.Partitions = append(rt.Partitions, offsetcommit.ResponsePartition{PartitionIndex: p.PartitionIndex})
			}
			res.Topics = append(res.Topics, rt)
		}
		return wiretest.Reply(res)
	})
	return f
}

func (f *fakeGroup) setHeartbeat(code int16) {
	f.mu.Lock()
	f.hbCode = code
	f.mu.Unlock()
}

func (f *fakeGroup) member(t *testing.T, instance string) *Membership {
	pool := wire.NewPool(&wire.Dialer{})
	t.Cleanup(func() { _ = pool.Close() })
	m, err := NewMembership(Config{Network: pool, Client: wire.NewClient(pool, f.cl.Addrs()), Group: "g",
		InstanceID: instance, Rack: "r1", Topics: []string{"t"}, Assignors: []Assignor{CooperativeSticky(), Range()},
		SessionTimeout: time.Second, RebalanceTimeout: time.Second, HeartbeatInterval: 10 * time.Millisecond,
		RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Join answers MEMBER_ID_REQUIRED by rejoining with the given ID, sends the
// Java consumer protocol's subscription (v3, with rack and cooperative user
// data), leads, and a dynamic member leaves on Close.
func TestMembershipJoinLeadsAndLeaves(t *testing.T) {
	f := newFakeGroup(t)
	m := f.member(t, "")
	ctx := context.Background()
	gen, err := m.Join(ctx, nil, NoGeneration)
	if err != nil {
		t.Fatal(err)
	}
	if gen.ID != 1 || !gen.Leader || gen.MemberID != "m-1" || gen.Protocol != "cooperative-sticky" || !gen.Cooperative {
		t.Fatalf("generation %+v", gen)
	}
	if len(gen.Assigned) != 2 {
		t.Fatalf("assigned %v, want both partitions", gen.Assigned)
	}
	f.mu.Lock()
	joins := f.joins
	f.mu.Unlock()
	if len(joins) != 2 || joins[0].MemberID != "" || joins[1].MemberID != "m-1" {
		t.Fatalf("joins: %d, member IDs %q", len(joins), []string{joins[0].MemberID, joins[len(joins)-1].MemberID})
	}
	sub, v, err := DecodeSubscription(joins[1].Protocols[0].Metadata)
	if err != nil || v != 3 || sub.RackID != "r1" || len(sub.Topics) != 1 || sub.Topics[0] != "t" ||
		string(sub.UserData) != string(CooperativeStickyUserData(NoGeneration)) {
		t.Fatalf("subscription v%d %+v err %v", v, sub, err)
	}
	if joins[1].Protocols[1].Name != "range" {
		t.Fatalf("protocols offered: %q", joins[1].Protocols[1].Name)
	}
	if err := m.Commit(ctx, gen, map[TopicPartition]int64{{"t", 0}: 5}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.leaves) != 1 || len(f.leaves[0].Members) != 1 || f.leaves[0].Members[0].MemberID != "m-1" {
		t.Fatalf("leaves: %+v", f.leaves)
	}
	if c := f.commits[0]; c.GenerationID != 1 || c.MemberID != "m-1" {
		t.Fatalf("commit through generation %d member %q", c.GenerationID, c.MemberID)
	}
}

// REBALANCE_IN_PROGRESS ends the generation, and heartbeats go on (the
// owner may still be draining).
func TestMembershipHeartbeatsThroughRebalance(t *testing.T) {
	f := newFakeGroup(t)
	m := f.member(t, "")
	gen, err := m.Join(context.Background(), nil, NoGeneration)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "heartbeats", func() bool { return f.hbCount.Load() > 2 })
	f.setHeartbeat(27)
	select {
	case <-gen.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("generation did not end")
	}
	if gen.Fenced() || gen.Err() == nil {
		t.Fatalf("ended with %v, want ErrRebalance", gen.Err())
	}
	at := f.hbCount.Load()
	eventually(t, "heartbeats after the generation ended", func() bool { return f.hbCount.Load() > at+3 })
}

// UNKNOWN_MEMBER_ID fences the generation and the member rejoins without
// its old member ID.
func TestMembershipUnknownMemberRejoinsFresh(t *testing.T) {
	f := newFakeGroup(t)
	m := f.member(t, "")
	gen, err := m.Join(context.Background(), nil, NoGeneration)
	if err != nil {
		t.Fatal(err)
	}
	f.setHeartbeat(25)
	<-gen.Done()
	if !gen.Fenced() {
		t.Fatalf("ended with %v, want ErrFenced", gen.Err())
	}
	if id := m.MemberID(); id != "" {
		t.Fatalf("member ID %q kept", id)
	}
	f.setHeartbeat(0)
	f.mu.Lock()
	n := len(f.joins)
	f.mu.Unlock()
	if _, err := m.Join(context.Background(), gen.Assigned, gen.ID); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.joins[n].MemberID != "" {
		t.Fatalf("rejoined as %q", f.joins[n].MemberID)
	}
}

// NOT_COORDINATOR makes the member find the coordinator again; heartbeats
// then go to the new one and the generation goes on.
func TestMembershipFollowsCoordinator(t *testing.T) {
	f := newFakeGroup(t)
	m := f.member(t, "")
	gen, err := m.Join(context.Background(), nil, NoGeneration)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "heartbeats to broker 0", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.hbBrokers[0] > 0 })
	f.cl.SetCoordinator("g", 1)
	f.setHeartbeat(16)
	eventually(t, "heartbeats to broker 1", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.hbBrokers[1] > 0 })
	f.setHeartbeat(0)
	if gen.Err() != nil {
		t.Fatalf("generation ended: %v", gen.Err())
	}
}

// A static member sends its instance ID and does not leave on Close.
func TestMembershipStaticDoesNotLeave(t *testing.T) {
	f := newFakeGroup(t)
	m := f.member(t, "pod-0")
	gen, err := m.Join(context.Background(), nil, NoGeneration)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-gen.Done()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.joins[len(f.joins)-1].GroupInstanceID != "pod-0" {
		t.Fatalf("instance ID %q", f.joins[len(f.joins)-1].GroupInstanceID)
	}
	if len(f.leaves) != 0 {
		t.Fatalf("a static member left: %+v", f.leaves)
	}
	if _, err := m.Join(context.Background(), nil, NoGeneration); err != ErrMemberClosed {
		t.Fatalf("join after close: %v", err)
	}
}

// A join cancelled while the coordinator holds it (waiting for the rest of
// the group) does not hold up the LeaveGroup that follows: Kafka answers a
// connection's requests in order, so the member leaves on a new one.
func TestMembershipLeaveAfterCancelledJoin(t *testing.T) {
	f := newFakeGroup(t)
	hold := make(chan struct{})
	defer close(hold)
	f.holdJoin = hold
	m := f.member(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := m.Join(ctx, nil, NoGeneration)
		errc <- err
	}()
	eventually(t, "a held join", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.joins) == 2 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled join succeeded")
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("leave after a cancelled join: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.leaves) != 1 || f.leaves[0].Members[0].MemberID != "m-1" {
		t.Fatalf("leaves: %+v", f.leaves)
	}
}

// While a rejoin is held by the coordinator, heartbeats go on beside it (on
// another connection: the group connection holds the JoinGroup), for
// coordinators that expire a waiting member (kfake), and do not end the
// generation the join returns.
func TestMembershipHeartbeatsWhileItsJoinIsHeld(t *testing.T) {
	f := newFakeGroup(t)
	m := f.member(t, "")
	gen, err := m.Join(context.Background(), nil, NoGeneration)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "heartbeats", func() bool { return f.hbCount.Load() > 2 })
	hold := make(chan struct{})
	f.mu.Lock()
	f.holdJoin = hold
	f.hbCode = 27 // REBALANCE_IN_PROGRESS, as Kafka answers a member it waits for
	f.mu.Unlock()
	type joined struct {
		gen *Generation
		err error
	}
	done := make(chan joined, 1)
	go func() {
		g, err := m.Join(context.Background(), gen.Assigned, gen.ID)
		done <- joined{g, err}
	}()
	eventually(t, "a held rejoin", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.joins) == 3 })
	at := f.hbCount.Load()
	eventually(t, "heartbeats while the rejoin is held", func() bool { return f.hbCount.Load() > at+3 })
	select {
	case j := <-done:
		t.Fatalf("the rejoin ended while held (%v): the heartbeats counted came after it", j.err)
	default:
	}
	f.setHeartbeat(0)
	close(hold)
	j := <-done
	if j.err != nil {
		t.Fatal(j.err)
	}
	if j.gen.Err() != nil || m.MemberID() != "m-1" {
		t.Fatalf("after the held rejoin: generation ended with %v, member %q", j.gen.Err(), m.MemberID())
	}
}

// kafka-go's subscription (version 1 without owned partitions) is read by a
// leader as its version-0 fields; an eager member without a rack sends
// version 0, which kafka-go's leader reads.
func TestKafkaGoSubscriptionCompatibility(t *testing.T) {
	kgo := []byte{0, 1, 0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 0} // v1, topics ["t"], user data empty
	if _, _, err := DecodeSubscription(kgo); err == nil {
		t.Fatal("kafka-go's subscription decodes strictly: the leniency below would be untested")
	}
	sub, err := decodeMemberSubscription(kgo)
	if err != nil || len(sub.Topics) != 1 || sub.Topics[0] != "t" {
		t.Fatalf("lenient decode: %+v, %v", sub, err)
	}
	if _, err := decodeMemberSubscription([]byte{0, 3, 0}); err == nil {
		t.Fatal("garbage decoded")
	}
	m := &Membership{cfg: Config{Topics: []string{"t"}}}
	b, err := m.subscription(Range(), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, v, err := DecodeSubscription(b); err != nil || v != 0 {
		t.Fatalf("eager subscription v%d, %v: want version 0", v, err)
	}
	m.cfg.Rack = "r1"
	b, _ = m.subscription(Range(), nil, 4)
	if _, v, _ := DecodeSubscription(b); v != MaxVersion {
		t.Fatalf("with a rack: v%d, want %d", v, MaxVersion)
	}
}
