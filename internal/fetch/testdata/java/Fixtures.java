// Fixtures writes, with Apache Kafka's own Java client, the topics whose raw
// Fetch responses become internal/fetch's real-broker test fixtures (see
// ../README.md), and prints every record it wrote as one JSON line:
//
//   {"topic":"fx-txn","partition":0,"offset":3,"timestamp":1700000000000,
//    "status":"committed"|"aborted"|"open"|"plain",
//    "key":"<base64>"|null,"value":"<base64>"|null,
//    "headers":[{"key":"<name>","value":"<base64>"|null}, ...]}
//
// "timestamp" is what the broker reported (RecordMetadata.timestamp(): the
// append time on a LogAppendTime topic). It has no build system: capture.sh
// compiles it with javac --release 17 against the cached kafka-clients jar.
//
// usage: Fixtures <bootstrap>      (JSON lines on stdout, progress on stderr)
//
// Topics (created here; the broker must be fresh):
//   fx-txn        1 partition. Transactional producers A (uncompressed) and B
//                 (lz4), an idempotent non-transactional producer N, and C,
//                 whose transaction stays open (so the last stable offset is
//                 below the high watermark). A commits, aborts, interleaves
//                 an aborted transaction with B's committed one across
//                 several batches each, aborts and commits again; N writes
//                 between transactions and after C's open one.
//   fx-logappend  1 partition, message.timestamp.type=LogAppendTime; records
//                 carry CreateTime 2001-09-09 that the broker replaces.
//   fx-nulls      1 partition: null/empty keys, values and header values,
//                 uncompressed then the same records snappy-compressed.
//   fx-codecs     5 partitions; partition i is written with codec i (none,
//                 gzip, snappy, lz4, zstd), 3 batches of 10 records.
//   fx-compacted  1 partition, cleanup.policy=compact, compacted before this
//                 tool exits (the broker needs log.cleaner.backoff.ms small):
//                 batches with offset gaps, tombstones kept.
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class Fixtures {
    private static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};

    /** A record sent, its metadata to come, and what it is. */
    private record Sent(ProducerRecord<byte[], byte[]> rec, Future<RecordMetadata> md, String status) {}

    private final String bootstrap;
    private final List<Sent> sent = new ArrayList<>();

    private Fixtures(String bootstrap) {
        this.bootstrap = bootstrap;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: Fixtures <bootstrap>");
            System.exit(2);
        }
        try {
            new Fixtures(args[0]).run();
        } catch (Exception e) {
            e.printStackTrace(System.err);
            System.exit(1);
        }
        System.exit(0);
    }

    private void run() throws Exception {
        createTopics();
        txn();
        logAppend();
        nulls();
        codecs();
        compacted();
        for (Sent s : sent) {
            RecordMetadata md = s.md.get();
            System.out.println(json(s.rec, md, s.status));
        }
        System.out.flush();
    }

    private void createTopics() throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(
                new NewTopic("fx-txn", 1, (short) 1),
                new NewTopic("fx-logappend", 1, (short) 1)
                    .configs(Map.of("message.timestamp.type", "LogAppendTime")),
                new NewTopic("fx-nulls", 1, (short) 1),
                new NewTopic("fx-codecs", CODECS.length, (short) 1),
                new NewTopic("fx-compacted", 1, (short) 1).configs(Map.of(
                    "cleanup.policy", "compact",
                    "segment.ms", "1000",
                    "min.cleanable.dirty.ratio", "0.001",
                    "min.compaction.lag.ms", "0",
                    "delete.retention.ms", "86400000"))
            )).all().get();
        }
    }

    private Properties producerProps(String compression) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        // Records wait for flush(), commit or a full batch: batches are
        // exactly what each step sends between flushes.
        p.put(ProducerConfig.LINGER_MS_CONFIG, "60000");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "1000000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return p;
    }

    private KafkaProducer<byte[], byte[]> producer(String compression) {
        return new KafkaProducer<>(producerProps(compression));
    }

    private KafkaProducer<byte[], byte[]> txProducer(String id, String compression, int timeoutMs) {
        Properties p = producerProps(compression);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, Integer.toString(timeoutMs));
        KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p);
        prod.initTransactions();
        return prod;
    }

    private static byte[] utf8(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    private void send(KafkaProducer<byte[], byte[]> prod, ProducerRecord<byte[], byte[]> rec, String status) {
        sent.add(new Sent(rec, prod.send(rec), status));
    }

    /** Sends n records keyed "<name>-<i>" to fx-txn, then flushes (one batch). */
    private void txnBatch(KafkaProducer<byte[], byte[]> prod, String name, int from, int n, String status) {
        for (int i = from; i < from + n; i++) {
            String key = name + "-" + i;
            RecordHeaders h = new RecordHeaders();
            h.add("status", utf8(status));
            send(prod, new ProducerRecord<>("fx-txn", 0, null, utf8(key), utf8("value of " + key), h), status);
        }
        prod.flush();
    }

    private void txn() {
        KafkaProducer<byte[], byte[]> a = txProducer("fx-A", "none", 60000);
        KafkaProducer<byte[], byte[]> b = txProducer("fx-B", "lz4", 60000);
        KafkaProducer<byte[], byte[]> c = txProducer("fx-C", "none", 900000);
        KafkaProducer<byte[], byte[]> n = producer("none");

        a.beginTransaction();
        txnBatch(a, "commit-A1", 0, 5, "committed");
        a.commitTransaction();

        a.beginTransaction();
        txnBatch(a, "abort-A2", 0, 5, "aborted");
        a.abortTransaction();

        txnBatch(n, "plain-N1", 0, 3, "plain");

        a.beginTransaction();
        b.beginTransaction();
        txnBatch(a, "abort-A3", 0, 2, "aborted");
        txnBatch(b, "commit-B1", 0, 2, "committed");
        txnBatch(a, "abort-A3", 2, 2, "aborted");
        txnBatch(b, "commit-B1", 2, 2, "committed");
        a.abortTransaction();
        b.commitTransaction();

        b.beginTransaction();
        txnBatch(b, "commit-B2", 0, 5, "committed");
        b.commitTransaction();

        txnBatch(n, "plain-N2", 0, 2, "plain");

        a.beginTransaction();
        txnBatch(a, "abort-A4", 0, 3, "aborted");
        a.abortTransaction();

        a.beginTransaction();
        txnBatch(a, "commit-A5", 0, 3, "committed");
        a.commitTransaction();

        // C's transaction stays open: the last stable offset stops at its
        // first record, so N's records after it are not readable committed.
        c.beginTransaction();
        txnBatch(c, "open-C1", 0, 3, "open");
        txnBatch(n, "plain-N3", 0, 2, "plain");

        a.close();
        b.close();
        n.close();
        // A forced close does not abort the open transaction (a graceful one
        // would); it times out long after the capture.
        c.close(Duration.ZERO);
    }

    private void logAppend() {
        String[] codecs = {"none", "gzip", "none"};
        for (int batch = 0; batch < codecs.length; batch++) {
            try (KafkaProducer<byte[], byte[]> p = producer(codecs[batch])) {
                for (int i = 0; i < 4; i++) {
                    String key = "la-" + batch + "-" + i;
                    send(p, new ProducerRecord<>("fx-logappend", 0, 1_000_000_000_000L + i, utf8(key), utf8("value of " + key)), "plain");
                }
                p.flush();
            }
        }
    }

    private void nulls() {
        for (String codec : new String[] {"none", "snappy"}) {
            try (KafkaProducer<byte[], byte[]> p = producer(codec)) {
                RecordHeaders h = new RecordHeaders();
                h.add("null", null);
                h.add("empty", new byte[0]);
                h.add("x", utf8("y"));
                h.add("dup", utf8("1"));
                h.add("dup", utf8("2"));
                Object[][] recs = {
                    {null, utf8("value with a null key"), null},
                    {new byte[0], new byte[0], null},
                    {utf8("tombstone"), null, null},
                    {utf8("headers"), utf8("h"), h},
                    {utf8("empty value"), new byte[0], null},
                    {null, null, null},
                };
                for (Object[] r : recs) {
                    send(p, new ProducerRecord<>("fx-nulls", 0, 1_700_000_000_000L, (byte[]) r[0], (byte[]) r[1], (RecordHeaders) r[2]), "plain");
                }
                p.flush();
            }
        }
    }

    private void codecs() {
        for (int part = 0; part < CODECS.length; part++) {
            String codec = CODECS[part];
            try (KafkaProducer<byte[], byte[]> p = producer(codec)) {
                for (int batch = 0; batch < 3; batch++) {
                    for (int j = batch * 10; j < batch * 10 + 10; j++) {
                        byte[] key = j % 10 == 9 ? null : utf8("c-" + codec + "-" + j);
                        byte[] value = new byte[(j * 97) % 1500];
                        for (int k = 0; k < value.length; k++) {
                            value[k] = (byte) ("abcdefgh".charAt((k / 7) % 8) + (j % 3));
                        }
                        RecordHeaders h = new RecordHeaders();
                        h.add("j", utf8(Integer.toString(j)));
                        send(p, new ProducerRecord<>("fx-codecs", part, 1_700_000_000_000L + j, key, value, h), "plain");
                    }
                    p.flush();
                }
            }
        }
    }

    private void compacted() throws Exception {
        try (KafkaProducer<byte[], byte[]> p = producer("none")) {
            for (int i = 0; i < 10; i++) {
                send(p, new ProducerRecord<>("fx-compacted", 0, utf8("k" + i), utf8("v1-k" + i)), "plain");
            }
            p.flush();
            for (int i = 0; i < 5; i++) {
                send(p, new ProducerRecord<>("fx-compacted", 0, utf8("k" + i), utf8("v2-k" + i)), "plain");
            }
            p.flush();
            for (int i = 5; i < 7; i++) {
                send(p, new ProducerRecord<>("fx-compacted", 0, utf8("k" + i), null), "plain");
            }
            p.flush();
            // A record after segment.ms rolls the segment, so the cleaner can
            // compact the one before.
            Thread.sleep(1500);
            send(p, new ProducerRecord<>("fx-compacted", 0, utf8("roll"), utf8("roll")), "plain");
            p.flush();
        }
        // Wait until the cleaner removed the superseded records.
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        TopicPartition tp = new TopicPartition("fx-compacted", 0);
        long deadline = System.currentTimeMillis() + 120_000;
        try (KafkaConsumer<byte[], byte[]> cons = new KafkaConsumer<>(c)) {
            cons.assign(List.of(tp));
            while (true) {
                cons.seekToBeginning(List.of(tp));
                int n = 0;
                long end = cons.endOffsets(List.of(tp)).get(tp);
                while (cons.position(tp) < end) {
                    for (ConsumerRecord<byte[], byte[]> r : cons.poll(Duration.ofMillis(500))) {
                        n++;
                    }
                }
                if (n < 18) {
                    System.err.println("fixtures: fx-compacted compacted to " + n + " of 18 records");
                    return;
                }
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("fx-compacted was not compacted in 120 s");
                }
                Thread.sleep(1000);
            }
        }
    }

    private static String json(ProducerRecord<byte[], byte[]> r, RecordMetadata md, String status) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"topic\":\"").append(md.topic()).append("\",\"partition\":").append(md.partition())
          .append(",\"offset\":").append(md.offset()).append(",\"timestamp\":").append(md.timestamp())
          .append(",\"status\":\"").append(status).append("\",\"key\":").append(b64(r.key()))
          .append(",\"value\":").append(b64(r.value())).append(",\"headers\":[");
        boolean first = true;
        for (Header h : r.headers()) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            sb.append("{\"key\":\"").append(h.key()).append("\",\"value\":").append(b64(h.value())).append('}');
        }
        return sb.append("]}").toString();
    }

    private static String b64(byte[] b) {
        return b == null ? "null" : "\"" + Base64.getEncoder().encodeToString(b) + "\"";
    }
}
