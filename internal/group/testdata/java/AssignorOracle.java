// AssignorOracle: Apache Kafka's Java consumer-protocol codec and assignors
// as a test oracle for internal/group. No build system: compiled by
// oracle.sh (javac --release 17) against kafka-clients and Jackson from the
// Kafka distribution cached by scripts/kafka/fetch.sh.
//
// One JSON object per line on stdin, one JSON object per line on stdout, in
// the same order. A Java exception becomes {"error": "<class>: <message>"}.
//
//   {"op":"assign","assignor":"range"|"roundrobin"|"cooperative-sticky",
//    "members":[{"id":"m1","instance":"i1"|null,"metadata":"<base64>"}],
//    "topics":[{"name":"t","partitions":3}],
//    "racks":{"t":["a,b","","c"]}}   (optional; per partition, replica racks joined by commas)
//      -> {"assignments":{"m1":[["t",0],...]},"encoded":{"m1":"<base64>"}}
//   The leader's path of ConsumerCoordinator.onLeaderElected: each member's
//   metadata decoded with ConsumerProtocol.deserializeSubscription into a
//   HashMap in member order, a Cluster with the topics (replicas on nodes of
//   the given racks), a new assignor, assign(cluster, groupSubscription), and
//   each assignment encoded with ConsumerProtocol.serializeAssignment.
//
//   {"op":"encodeSubscription","version":v,"topics":[...],"userData":"<b64>"|null,
//    "owned":[["t",0],...],"generation":g,"rack":"r"|null}      -> {"bytes":"<b64>"}
//   {"op":"decodeSubscription","bytes":"<b64>"}
//      -> {"version":v,"topics":[...],"userData":..,"owned":[[..]],"generation":g,"rack":..}
//   {"op":"encodeAssignment","version":v,"partitions":[["t",0]],"userData":..} -> {"bytes":..}
//   {"op":"decodeAssignment","bytes":"<b64>"} -> {"version":v,"partitions":[..],"userData":..}

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Assignment;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.GroupSubscription;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Subscription;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.internals.ConsumerProtocol;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

public final class AssignorOracle {
    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank())
                continue;
            JsonNode req = JSON.readTree(line);
            ObjectNode resp;
            try {
                resp = handle(req);
            } catch (Exception e) {
                resp = JSON.createObjectNode();
                resp.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
            }
            out.println(JSON.writeValueAsString(resp));
        }
        out.flush();
    }

    private static ObjectNode handle(JsonNode req) {
        switch (req.get("op").asText()) {
            case "assign":
                return assign(req);
            case "encodeSubscription":
                return encodeSubscription(req);
            case "decodeSubscription":
                return decodeSubscription(req);
            case "encodeAssignment":
                return encodeAssignment(req);
            case "decodeAssignment":
                return decodeAssignment(req);
            default:
                throw new IllegalArgumentException("unknown op " + req.get("op"));
        }
    }

    private static ConsumerPartitionAssignor assignor(String name) {
        switch (name) {
            case "range":
                return new RangeAssignor();
            case "roundrobin":
                return new RoundRobinAssignor();
            case "cooperative-sticky":
                return new CooperativeStickyAssignor();
            default:
                throw new IllegalArgumentException("unknown assignor " + name);
        }
    }

    private static ObjectNode assign(JsonNode req) {
        // As ConsumerCoordinator.onLeaderElected builds it.
        Map<String, Subscription> subscriptions = new HashMap<>();
        for (JsonNode m : req.get("members")) {
            Subscription s = ConsumerProtocol.deserializeSubscription(ByteBuffer.wrap(bytes(m.get("metadata"))));
            s.setGroupInstanceId(Optional.ofNullable(text(m.get("instance"))));
            subscriptions.put(m.get("id").asText(), s);
        }

        Map<String, Node> rackNodes = new LinkedHashMap<>();
        Node noRack = new Node(0, "localhost", 9092);
        Map<TopicPartition, List<String>> racks = new HashMap<>();
        if (req.has("racks")) {
            req.get("racks").fields().forEachRemaining(e -> {
                int p = 0;
                for (JsonNode joined : e.getValue()) {
                    if (!joined.asText().isEmpty())
                        racks.put(new TopicPartition(e.getKey(), p), List.of(joined.asText().split(",")));
                    p++;
                }
            });
        }
        List<PartitionInfo> partitions = new ArrayList<>();
        for (JsonNode t : req.get("topics")) {
            String topic = t.get("name").asText();
            int n = t.get("partitions").asInt();
            for (int p = 0; p < n; p++) {
                List<String> names = racks.getOrDefault(new TopicPartition(topic, p), Collections.emptyList());
                Node[] replicas;
                if (names.isEmpty()) {
                    replicas = new Node[] {noRack};
                } else {
                    replicas = new Node[names.size()];
                    for (int i = 0; i < names.size(); i++) {
                        String rack = names.get(i);
                        replicas[i] = rackNodes.computeIfAbsent(rack,
                            k -> new Node(rackNodes.size() + 1, "localhost", 9093 + rackNodes.size(), k));
                    }
                }
                partitions.add(new PartitionInfo(topic, p, replicas[0], replicas, replicas));
            }
        }
        List<Node> nodes = new ArrayList<>();
        nodes.add(noRack);
        nodes.addAll(rackNodes.values());
        Cluster cluster = new Cluster("oracle", nodes, partitions, Collections.emptySet(), Collections.emptySet());

        Map<String, Assignment> result = assignor(req.get("assignor").asText())
            .assign(cluster, new GroupSubscription(subscriptions)).groupAssignment();

        ObjectNode resp = JSON.createObjectNode();
        ObjectNode assignments = resp.putObject("assignments");
        ObjectNode encoded = resp.putObject("encoded");
        for (Map.Entry<String, Assignment> e : result.entrySet()) {
            assignments.set(e.getKey(), partitionsJson(e.getValue().partitions()));
            encoded.put(e.getKey(), base64(ConsumerProtocol.serializeAssignment(e.getValue())));
        }
        return resp;
    }

    private static ObjectNode encodeSubscription(JsonNode req) {
        List<String> topics = new ArrayList<>();
        for (JsonNode t : req.get("topics"))
            topics.add(t.asText());
        Subscription s = new Subscription(topics, byteBuffer(req.get("userData")), partitions(req.get("owned")),
            req.get("generation").asInt(), Optional.ofNullable(text(req.get("rack"))));
        ObjectNode resp = JSON.createObjectNode();
        resp.put("bytes", base64(ConsumerProtocol.serializeSubscription(s, (short) req.get("version").asInt())));
        return resp;
    }

    private static ObjectNode decodeSubscription(JsonNode req) {
        ByteBuffer buf = ByteBuffer.wrap(bytes(req.get("bytes")));
        short version = ConsumerProtocol.deserializeVersion(buf.duplicate());
        Subscription s = ConsumerProtocol.deserializeSubscription(buf);
        ObjectNode resp = JSON.createObjectNode();
        resp.put("version", version);
        ArrayNode topics = resp.putArray("topics");
        s.topics().forEach(topics::add);
        putBytes(resp, "userData", s.userData());
        resp.set("owned", partitionsJson(s.ownedPartitions()));
        resp.put("generation", s.generationId().orElse(-1));
        if (s.rackId().isPresent())
            resp.put("rack", s.rackId().get());
        else
            resp.putNull("rack");
        return resp;
    }

    private static ObjectNode encodeAssignment(JsonNode req) {
        Assignment a = new Assignment(partitions(req.get("partitions")), byteBuffer(req.get("userData")));
        ObjectNode resp = JSON.createObjectNode();
        resp.put("bytes", base64(ConsumerProtocol.serializeAssignment(a, (short) req.get("version").asInt())));
        return resp;
    }

    private static ObjectNode decodeAssignment(JsonNode req) {
        ByteBuffer buf = ByteBuffer.wrap(bytes(req.get("bytes")));
        short version = ConsumerProtocol.deserializeVersion(buf.duplicate());
        Assignment a = ConsumerProtocol.deserializeAssignment(buf);
        ObjectNode resp = JSON.createObjectNode();
        resp.put("version", version);
        resp.set("partitions", partitionsJson(a.partitions()));
        putBytes(resp, "userData", a.userData());
        return resp;
    }

    private static List<TopicPartition> partitions(JsonNode list) {
        List<TopicPartition> out = new ArrayList<>();
        if (list != null && !list.isNull())
            for (JsonNode tp : list)
                out.add(new TopicPartition(tp.get(0).asText(), tp.get(1).asInt()));
        return out;
    }

    private static ArrayNode partitionsJson(List<TopicPartition> partitions) {
        ArrayNode out = JSON.createArrayNode();
        for (TopicPartition tp : partitions) {
            ArrayNode pair = out.addArray();
            pair.add(tp.topic());
            pair.add(tp.partition());
        }
        return out;
    }

    private static String text(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText();
    }

    private static byte[] bytes(JsonNode n) {
        return Base64.getDecoder().decode(n.asText());
    }

    private static ByteBuffer byteBuffer(JsonNode n) {
        return n == null || n.isNull() ? null : ByteBuffer.wrap(bytes(n));
    }

    private static void putBytes(ObjectNode o, String field, ByteBuffer b) {
        if (b == null) {
            o.putNull(field);
            return;
        }
        byte[] copy = new byte[b.remaining()];
        b.duplicate().get(copy);
        o.put(field, Base64.getEncoder().encodeToString(copy));
    }

    private static String base64(ByteBuffer b) {
        byte[] copy = new byte[b.remaining()];
        b.duplicate().get(copy);
        return Base64.getEncoder().encodeToString(copy);
    }
}
