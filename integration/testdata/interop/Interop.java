// Interop is a tiny command-line tool on top of Apache Kafka's own Java client
// (kafka-clients), used by integration/interop_test.go to check that what mq
// writes is what the reference client reads, and the other way round.
//
// It has no build system: scripts/interop/build.sh compiles it with javac
// against the cached Kafka jars and scripts/interop/java.sh runs it.
//
// Subcommands (all print ASCII only; errors go to stderr with exit status 1,
// usage errors exit with 2):
//
//   produce <bootstrap> <topic> <compression>[,<compression>...] <count>
//       For each compression codec in order (none, gzip, snappy, lz4, zstd),
//       produces <count> records, record(codec, i) for i = 0..count-1, with
//       acks=all and the client's DEFAULT partitioner, then prints one line
//       per record, in that order:  <partition> <offset> <key>
//       where <key> is the key in lower-case hex, "null" for a null key, or
//       "-" for an empty one.
//
//   consume <bootstrap> <topic> <count>
//       Reads every partition of <topic> from the beginning, without a
//       consumer group, until <count> records were read (failing after
//       INTEROP_TIMEOUT_MS, default 30000), and prints each as one JSON line:
//       {"partition":0,"offset":0,"timestamp":1700000000000,
//        "key":"<base64>"|null,"value":"<base64>"|null,
//        "headers":[{"key":"<name>","value":"<base64>"|null}, ...]}
//
//   transactions <bootstrap> <topic> <count> <per>
//       Writes <count> transactions of <per> records each with one
//       transactional producer (transactional.id "mq-interop-<topic>"),
//       committing the even-numbered ones (0, 2, ...) and aborting the odd
//       ones, and prints one line per record, in order:
//       <partition> <offset> <C|A>   (C: committed, A: aborted)
//       Record r of transaction t (n = t*<per> + r, counted over all
//       transactions) has key UTF-8 "txn-<n>" (partitioned by the default
//       partitioner) and the JSON value {"id":<n>,"txn":<t>}.
//
//   partition <bootstrap> <topic> <key>...
//       Produces one record per key with the DEFAULT partitioner and prints
//       "<key hex> <partition>" per key, in argument order. A key written as
//       hex:<hex digits> is those bytes; any other argument is its UTF-8 bytes.
//
//   group <bootstrap> <topic> <group> <strategy>
//       A KafkaConsumer (classic group protocol) in consumer group <group>
//       with partition.assignment.strategy <strategy> (range, roundrobin or
//       cooperative-sticky), session timeout 6 s, heartbeat 500 ms; or, for
//       <strategy> "consumer", one on the new protocol (group.protocol=consumer,
//       KIP-848: the broker assigns, its timeouts apply). No auto
//       commit, subscribed to <topic>, reading from the earliest offset. It
//       polls (200 ms) and commits synchronously after each poll that
//       returned records, and in onPartitionsRevoked, until its standard
//       input reaches end of file; then it closes (leaving the group).
//       It prints, one line each:
//         A <p>,<p>,...   partitions assigned (the newly added ones)
//         V <p>,<p>,...   partitions revoked
//         L <p>,<p>,...   partitions lost
//         R <partition> <offset> <value as UTF-8>   each record
//         X               before exiting normally
//       Any exception (for example a malformed subscription of another
//       member) exits with status 1.
//
// record(codec, i), which the Go test rebuilds byte for byte (see
// javaRecord in interop_test.go):
//
//   key     null if i%10 == 9, else UTF-8 "java-<codec>-<i>" + {0x00, 0xff}
//   value   null if i%10 == 8, empty if i%10 == 7, else
//           UTF-8 "jv:<codec>:<i>:" + {0x00} + n bytes b[j] = (i*7 + j*13) & 0xff,
//           n = (i*53) % 700
//   headers none if i%10 == 6, else, in order:
//           idx=UTF-8 "<i>", codec=UTF-8 "<codec>",
//           bin={0x00,0x01,0x7f,0x80,0xfe,0xff,i&0xff}, empty={}, null=null,
//           dup="1", dup="2", "\u00fcn\u00ef-\u540d"=UTF-8 "u"
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class Interop {
    private static final PrintStream OUT = System.out;

    public static void main(String[] args) {
        try {
            System.exit(run(args));
        } catch (Exception e) {
            System.err.println("interop: " + e);
            e.printStackTrace(System.err);
            System.exit(1);
        }
    }

    private static int run(String[] args) throws Exception {
        if (args.length < 1) {
            return usage();
        }
        switch (args[0]) {
            case "produce":
                if (args.length != 5) {
                    return usage();
                }
                produce(args[1], args[2], args[3].split(","), Integer.parseInt(args[4]));
                return 0;
            case "consume":
                if (args.length != 4) {
                    return usage();
                }
                return consume(args[1], args[2], Integer.parseInt(args[3]));
            case "transactions":
                if (args.length != 5) {
                    return usage();
                }
                transactions(args[1], args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]));
                return 0;
            case "group":
                if (args.length != 5) {
                    return usage();
                }
                group(args[1], args[2], args[3], args[4]);
                return 0;
            case "partition":
                if (args.length < 4) {
                    return usage();
                }
                List<byte[]> keys = new ArrayList<>();
                for (int i = 3; i < args.length; i++) {
                    keys.add(parseKey(args[i]));
                }
                partition(args[1], args[2], keys);
                return 0;
            default:
                return usage();
        }
    }

    private static int usage() {
        System.err.println("usage: Interop produce <bootstrap> <topic> <compression>[,<compression>...] <count>");
        System.err.println("       Interop consume <bootstrap> <topic> <count>");
        System.err.println("       Interop transactions <bootstrap> <topic> <count> <per>");
        System.err.println("       Interop partition <bootstrap> <topic> <key>|hex:<hex>...");
        System.err.println("       Interop group <bootstrap> <topic> <group> range|roundrobin|cooperative-sticky|consumer");
        return 2;
    }

    // ----- produce -----

    private static Properties producerProps(String bootstrap, String compression) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "mq-interop-java");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        // A short linger so that several records share (compressed) batches.
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        // partitioner.class deliberately unset: the built-in default partitioner.
        return p;
    }

    static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int off = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, off, p.length);
            off += p.length;
        }
        return out;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static byte[] recordKey(String codec, int i) {
        if (i % 10 == 9) {
            return null;
        }
        return concat(utf8("java-" + codec + "-" + i), new byte[] {0x00, (byte) 0xff});
    }

    static byte[] recordValue(String codec, int i) {
        if (i % 10 == 8) {
            return null;
        }
        if (i % 10 == 7) {
            return new byte[0];
        }
        int n = (i * 53) % 700;
        byte[] tail = new byte[n];
        for (int j = 0; j < n; j++) {
            tail[j] = (byte) ((i * 7 + j * 13) & 0xff);
        }
        return concat(utf8("jv:" + codec + ":" + i + ":"), new byte[] {0x00}, tail);
    }

    static RecordHeaders recordHeaders(String codec, int i) {
        RecordHeaders h = new RecordHeaders();
        if (i % 10 == 6) {
            return h;
        }
        h.add("idx", utf8(Integer.toString(i)));
        h.add("codec", utf8(codec));
        h.add("bin", new byte[] {0x00, 0x01, 0x7f, (byte) 0x80, (byte) 0xfe, (byte) 0xff, (byte) i});
        h.add("empty", new byte[0]);
        h.add("null", null);
        h.add("dup", utf8("1"));
        h.add("dup", utf8("2"));
        h.add("\u00fcn\u00ef-\u540d", utf8("u"));
        return h;
    }

    private static void produce(String bootstrap, String topic, String[] codecs, int count) throws Exception {
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        List<byte[]> keys = new ArrayList<>();
        for (String codec : codecs) {
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(bootstrap, codec))) {
                for (int i = 0; i < count; i++) {
                    byte[] key = recordKey(codec, i);
                    keys.add(key);
                    futures.add(producer.send(new ProducerRecord<>(topic, null, null, key,
                            recordValue(codec, i), recordHeaders(codec, i))));
                }
                producer.flush();
            }
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < futures.size(); i++) {
            RecordMetadata md = futures.get(i).get();
            byte[] key = keys.get(i);
            sb.append(md.partition()).append(' ').append(md.offset()).append(' ')
                    .append(key == null ? "null" : key.length == 0 ? "-" : hex(key)).append('\n');
        }
        OUT.print(sb);
        OUT.flush();
    }

    // ----- transactions -----

    private static void transactions(String bootstrap, String topic, int count, int per) throws Exception {
        Properties p = producerProps(bootstrap, "none");
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "mq-interop-" + topic);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        StringBuilder sb = new StringBuilder();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            for (int t = 0; t < count; t++) {
                boolean commit = t % 2 == 0;
                List<Future<RecordMetadata>> futures = new ArrayList<>();
                producer.beginTransaction();
                for (int r = 0; r < per; r++) {
                    int n = t * per + r;
                    futures.add(producer.send(new ProducerRecord<>(topic, utf8("txn-" + n),
                            utf8("{\"id\":" + n + ",\"txn\":" + t + "}"))));
                }
                producer.flush();
                if (commit) {
                    producer.commitTransaction();
                } else {
                    producer.abortTransaction();
                }
                for (Future<RecordMetadata> f : futures) {
                    RecordMetadata md = f.get();
                    sb.append(md.partition()).append(' ').append(md.offset()).append(' ')
                            .append(commit ? 'C' : 'A').append('\n');
                }
            }
        }
        OUT.print(sb);
        OUT.flush();
    }

    // ----- partition -----

    private static byte[] parseKey(String arg) {
        if (arg.startsWith("hex:")) {
            String h = arg.substring(4);
            if (h.length() % 2 != 0) {
                throw new IllegalArgumentException("odd hex key " + arg);
            }
            byte[] b = new byte[h.length() / 2];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) Integer.parseInt(h.substring(2 * i, 2 * i + 2), 16);
            }
            return b;
        }
        return utf8(arg);
    }

    private static void partition(String bootstrap, String topic, List<byte[]> keys) throws Exception {
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(bootstrap, "none"))) {
            for (byte[] key : keys) {
                futures.add(producer.send(new ProducerRecord<>(topic, key, utf8("partition-probe"))));
            }
            producer.flush();
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < keys.size(); i++) {
            sb.append(hex(keys.get(i))).append(' ').append(futures.get(i).get().partition()).append('\n');
        }
        OUT.print(sb);
        OUT.flush();
    }

    // ----- consume -----

    private static int consume(String bootstrap, String topic, int count) {
        long timeoutMs = 30000;
        String env = System.getenv("INTEROP_TIMEOUT_MS");
        if (env != null && !env.isEmpty()) {
            timeoutMs = Long.parseLong(env);
        }
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, "mq-interop-java");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        int got = 0;
        long deadline = System.currentTimeMillis() + timeoutMs;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c)) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs));
            if (infos == null || infos.isEmpty()) {
                System.err.println("interop: topic " + topic + " has no partitions");
                return 1;
            }
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo pi : infos) {
                tps.add(new TopicPartition(topic, pi.partition()));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            StringBuilder sb = new StringBuilder();
            while (got < count) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    break;
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(left, 200)))) {
                    sb.setLength(0);
                    sb.append("{\"partition\":").append(r.partition())
                            .append(",\"offset\":").append(r.offset())
                            .append(",\"timestamp\":").append(r.timestamp())
                            .append(",\"key\":").append(b64(r.key()))
                            .append(",\"value\":").append(b64(r.value()))
                            .append(",\"headers\":[");
                    boolean first = true;
                    for (Header h : r.headers()) {
                        if (!first) {
                            sb.append(',');
                        }
                        first = false;
                        sb.append("{\"key\":").append(jsonString(h.key()))
                                .append(",\"value\":").append(b64(h.value())).append('}');
                    }
                    sb.append("]}");
                    OUT.println(sb);
                    got++;
                }
            }
        }
        OUT.flush();
        if (got < count) {
            System.err.println("interop: read " + got + " of " + count + " records from " + topic
                    + " within " + timeoutMs + " ms");
            return 1;
        }
        return 0;
    }

    // ----- group -----

    private static String parts(java.util.Collection<TopicPartition> tps) {
        StringBuilder sb = new StringBuilder();
        for (TopicPartition tp : tps) {
            if (sb.length() > 0) {
                sb.append(',');
            }
            sb.append(tp.partition());
        }
        return sb.toString();
    }

    private static void group(String bootstrap, String topic, String groupId, String strategy) throws Exception {
        String cls;
        switch (strategy) {
            case "range":
                cls = org.apache.kafka.clients.consumer.RangeAssignor.class.getName();
                break;
            case "roundrobin":
                cls = org.apache.kafka.clients.consumer.RoundRobinAssignor.class.getName();
                break;
            case "cooperative-sticky":
                cls = org.apache.kafka.clients.consumer.CooperativeStickyAssignor.class.getName();
                break;
            case "consumer":
                cls = null; // the new protocol: the broker assigns
                break;
            default:
                throw new IllegalArgumentException("unknown strategy " + strategy);
        }
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, "mq-interop-java-group");
        c.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        if (cls == null) {
            c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        } else {
            c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            c.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, cls);
            c.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
            c.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        }
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        final KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c);
        final java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // wait for end of file
                }
            } catch (java.io.IOException e) {
                // treat as end of file
            }
            stop.set(true);
            consumer.wakeup();
        });
        stdin.setDaemon(true);
        stdin.start();
        try {
            consumer.subscribe(java.util.Collections.singletonList(topic),
                    new org.apache.kafka.clients.consumer.ConsumerRebalanceListener() {
                        @Override
                        public void onPartitionsRevoked(java.util.Collection<TopicPartition> tps) {
                            try {
                                consumer.commitSync();
                            } catch (org.apache.kafka.common.errors.WakeupException e) {
                                consumer.commitSync(); // the wakeup was for the poll loop
                            }
                            OUT.println("V " + parts(tps));
                            OUT.flush();
                        }

                        @Override
                        public void onPartitionsAssigned(java.util.Collection<TopicPartition> tps) {
                            OUT.println("A " + parts(tps));
                            OUT.flush();
                        }

                        @Override
                        public void onPartitionsLost(java.util.Collection<TopicPartition> tps) {
                            OUT.println("L " + parts(tps));
                            OUT.flush();
                        }
                    });
            while (!stop.get()) {
                org.apache.kafka.clients.consumer.ConsumerRecords<byte[], byte[]> recs;
                try {
                    recs = consumer.poll(Duration.ofMillis(200));
                } catch (org.apache.kafka.common.errors.WakeupException e) {
                    break; // stdin closed
                }
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    String v = r.value() == null ? "" : new String(r.value(), StandardCharsets.UTF_8);
                    OUT.println("R " + r.partition() + " " + r.offset() + " " + v);
                }
                OUT.flush();
                if (!recs.isEmpty()) {
                    try {
                        consumer.commitSync();
                    } catch (org.apache.kafka.common.errors.WakeupException e) {
                        break; // stdin closed: close() commits in onPartitionsRevoked
                    }
                }
            }
        } finally {
            consumer.close();
        }
        OUT.println("X");
        OUT.flush();
    }

    // ----- encoding -----

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder(2 * b.length);
        for (byte x : b) {
            sb.append(HEX[(x >> 4) & 0xf]).append(HEX[x & 0xf]);
        }
        return sb.toString();
    }

    static String b64(byte[] b) {
        return b == null ? "null" : "\"" + Base64.getEncoder().encodeToString(b) + "\"";
    }

    // jsonString quotes s as a JSON string using only ASCII (\\uXXXX escapes).
    static String jsonString(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (ch == '"' || ch == '\\') {
                sb.append('\\').append(ch);
            } else if (ch < 0x20 || ch > 0x7e) {
                sb.append(String.format("\\u%04x", (int) ch));
            } else {
                sb.append(ch);
            }
        }
        return sb.append('"').toString();
    }
}
