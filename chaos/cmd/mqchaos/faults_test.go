package main

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The injected error responses carry the code where kafka-go's consumer
// group (FindCoordinator v0, JoinGroup v1/2, SyncGroup v0, Heartbeat v0,
// OffsetFetch v1, OffsetCommit v2) and producer look for it.
func TestErrorResponses(t *testing.T) {
	code := kerr.NotCoordinator.Code

	hb := kmsg.NewPtrHeartbeatRequest()
	if r := errorResponse(hb, code).(*kmsg.HeartbeatResponse); r.ErrorCode != code {
		t.Errorf("heartbeat: %d", r.ErrorCode)
	}
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Version = 2
	if r := errorResponse(jg, code).(*kmsg.JoinGroupResponse); r.ErrorCode != code || r.Version != 2 {
		t.Errorf("join: %d v%d", r.ErrorCode, r.Version)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	if r := errorResponse(fc, code).(*kmsg.FindCoordinatorResponse); r.ErrorCode != code {
		t.Errorf("find coordinator: %d", r.ErrorCode)
	}

	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version = 2
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "t"
	for p := int32(0); p < 2; p++ {
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Partition = p
		ot.Partitions = append(ot.Partitions, op)
	}
	oc.Topics = append(oc.Topics, ot)
	r := errorResponse(oc, code).(*kmsg.OffsetCommitResponse)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 || r.Topics[0].Partitions[1].ErrorCode != code {
		t.Errorf("offset commit: %+v", r)
	}

	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version = 1
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t", []int32{0, 1, 2}
	of.Topics = append(of.Topics, ft)
	fr := errorResponse(of, code).(*kmsg.OffsetFetchResponse)
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 3 || fr.Topics[0].Partitions[2].ErrorCode != code || fr.Topics[0].Partitions[2].Offset != -1 {
		t.Errorf("offset fetch: %+v", fr)
	}

	pr := kmsg.NewPtrProduceRequest()
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 4
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	presp := produceError(pr, kerr.NotLeaderForPartition.Code).(*kmsg.ProduceResponse)
	if len(presp.Topics) != 1 || presp.Topics[0].Partitions[0].Partition != 4 || presp.Topics[0].Partitions[0].ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("produce: %+v", presp)
	}
}
