package wiretest

import (
	"sort"

	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/addoffsetstotxn"
	"github.com/segmentio/kafka-go/protocol/addpartitionstotxn"
	"github.com/segmentio/kafka-go/protocol/alterclientquotas"
	"github.com/segmentio/kafka-go/protocol/alterconfigs"
	"github.com/segmentio/kafka-go/protocol/alterpartitionreassignments"
	"github.com/segmentio/kafka-go/protocol/alteruserscramcredentials"
	"github.com/segmentio/kafka-go/protocol/apiversions"
	"github.com/segmentio/kafka-go/protocol/createacls"
	"github.com/segmentio/kafka-go/protocol/createpartitions"
	"github.com/segmentio/kafka-go/protocol/createtopics"
	"github.com/segmentio/kafka-go/protocol/deleteacls"
	"github.com/segmentio/kafka-go/protocol/deletegroups"
	"github.com/segmentio/kafka-go/protocol/deletetopics"
	"github.com/segmentio/kafka-go/protocol/describeacls"
	"github.com/segmentio/kafka-go/protocol/describeclientquotas"
	"github.com/segmentio/kafka-go/protocol/describeconfigs"
	"github.com/segmentio/kafka-go/protocol/describegroups"
	"github.com/segmentio/kafka-go/protocol/describeuserscramcredentials"
	"github.com/segmentio/kafka-go/protocol/electleaders"
	"github.com/segmentio/kafka-go/protocol/endtxn"
	"github.com/segmentio/kafka-go/protocol/fetch"
	"github.com/segmentio/kafka-go/protocol/findcoordinator"
	"github.com/segmentio/kafka-go/protocol/heartbeat"
	"github.com/segmentio/kafka-go/protocol/incrementalalterconfigs"
	"github.com/segmentio/kafka-go/protocol/initproducerid"
	"github.com/segmentio/kafka-go/protocol/joingroup"
	"github.com/segmentio/kafka-go/protocol/leavegroup"
	"github.com/segmentio/kafka-go/protocol/listgroups"
	"github.com/segmentio/kafka-go/protocol/listoffsets"
	"github.com/segmentio/kafka-go/protocol/listpartitionreassignments"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/protocol/offsetcommit"
	"github.com/segmentio/kafka-go/protocol/offsetdelete"
	"github.com/segmentio/kafka-go/protocol/offsetfetch"
	"github.com/segmentio/kafka-go/protocol/produce"
	_ "github.com/segmentio/kafka-go/protocol/rawproduce" // produce requests with pre-encoded records
	"github.com/segmentio/kafka-go/protocol/saslauthenticate"
	"github.com/segmentio/kafka-go/protocol/saslhandshake"
	"github.com/segmentio/kafka-go/protocol/syncgroup"
	"github.com/segmentio/kafka-go/protocol/txnoffsetcommit"
)

// apis are the APIs kafka-go has types for: the fake brokers advertise them
// in every version kafka-go supports, and read nothing else.
var apis = func() map[protocol.ApiKey]bool {
	m := make(map[protocol.ApiKey]bool)
	for _, req := range []protocol.Message{
		&addoffsetstotxn.Request{}, &addpartitionstotxn.Request{}, &alterclientquotas.Request{},
		&alterconfigs.Request{}, &alterpartitionreassignments.Request{}, &alteruserscramcredentials.Request{},
		&apiversions.Request{}, &createacls.Request{}, &createpartitions.Request{}, &createtopics.Request{},
		&deleteacls.Request{}, &deletegroups.Request{}, &deletetopics.Request{}, &describeacls.Request{},
		&describeclientquotas.Request{}, &describeconfigs.Request{}, &describegroups.Request{},
		&describeuserscramcredentials.Request{}, &electleaders.Request{}, &endtxn.Request{}, &fetch.Request{},
		&findcoordinator.Request{}, &heartbeat.Request{}, &incrementalalterconfigs.Request{},
		&initproducerid.Request{}, &joingroup.Request{}, &leavegroup.Request{}, &listgroups.Request{},
		&listoffsets.Request{}, &listpartitionreassignments.Request{}, &metadata.Request{},
		&offsetcommit.Request{}, &offsetdelete.Request{}, &offsetfetch.Request{}, &produce.Request{},
		&saslauthenticate.Request{}, &saslhandshake.Request{}, &syncgroup.Request{}, &txnoffsetcommit.Request{},
	} {
		m[req.ApiKey()] = true
	}
	return m
}()

func supported(key protocol.ApiKey, version int16) bool {
	return apis[key] && version >= key.MinVersion() && version <= key.MaxVersion()
}

// builtIn returns the cluster's own answer to r, or nil for an API it does
// not answer by itself. A handler may call it to start from the built-in
// answer and change it.
func (c *Cluster) builtIn(r *Request) protocol.Message {
	switch req := r.Msg.(type) {
	case *apiversions.Request:
		return c.apiVersions()
	case *metadata.Request:
		return c.metadata(req)
	case *findcoordinator.Request:
		id := c.coordinator(req.Key)
		host, port := c.hostPort(id)
		return &findcoordinator.Response{NodeID: id, Host: host, Port: port}
	}
	return nil
}

// BuiltIn returns the cluster's own answer to r (ApiVersions, Metadata,
// FindCoordinator), or nil for other APIs. Handlers use it to change one
// detail of the built-in answer.
func (c *Cluster) BuiltIn(r *Request) protocol.Message { return c.builtIn(r) }

func (c *Cluster) apiVersions() *apiversions.Response {
	res := &apiversions.Response{}
	for key := range apis {
		res.ApiKeys = append(res.ApiKeys, apiversions.ApiKeyResponse{
			ApiKey:     int16(key),
			MinVersion: key.MinVersion(),
			MaxVersion: key.MaxVersion(),
		})
	}
	sort.Slice(res.ApiKeys, func(i, j int) bool { return res.ApiKeys[i].ApiKey < res.ApiKeys[j].ApiKey })
	return res
}

// Error codes the built-in Metadata answer uses.
const (
	codeUnknownTopicOrPartition = 3
	codeLeaderNotAvailable      = 5
)

func (c *Cluster) metadata(req *metadata.Request) *metadata.Response {
	res := &metadata.Response{ClusterID: "wiretest", ControllerID: 0}
	for _, id := range c.brokerIDs() {
		host, port := c.hostPort(id)
		res.Brokers = append(res.Brokers, metadata.ResponseBroker{NodeID: id, Host: host, Port: port})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	names := req.TopicNames
	if names == nil {
		for name := range c.topics {
			names = append(names, name)
		}
		sort.Strings(names)
	}
	n := int32(len(c.brokers))
	for _, name := range names {
		ps, ok := c.topics[name]
		if !ok {
			res.Topics = append(res.Topics, metadata.ResponseTopic{Name: name, ErrorCode: codeUnknownTopicOrPartition})
			continue
		}
		t := metadata.ResponseTopic{Name: name}
		for i, p := range ps {
			rp := metadata.ResponsePartition{PartitionIndex: int32(i), LeaderID: p.leader, LeaderEpoch: p.epoch}
			if p.leader < 0 {
				rp.ErrorCode = codeLeaderNotAvailable
				rp.ReplicaNodes = []int32{int32(i) % n}
				rp.IsrNodes = []int32{}
			} else {
				// Every broker holds a replica, the leader first.
				for k := int32(0); k < n; k++ {
					rp.ReplicaNodes = append(rp.ReplicaNodes, (p.leader+k)%n)
				}
				rp.IsrNodes = rp.ReplicaNodes
			}
			t.Partitions = append(t.Partitions, rp)
		}
		res.Topics = append(res.Topics, t)
	}
	return res
}

func (c *Cluster) hostPort(id int32) (string, int32) {
	b := c.broker(id)
	host, port, _ := splitHostPort(b.addr)
	return host, port
}
