#!/usr/bin/env bash
# Run any Kafka class with the cached classpath and quiet (WARN, stderr) logging.
#
# usage: kafka-run-class.sh <main class> [args...]
#   org.apache.kafka.tools.TopicCommand                        (kafka-topics.sh)
#   org.apache.kafka.tools.consumer.group.ConsumerGroupCommand (kafka-consumer-groups.sh)
#   org.apache.kafka.tools.ConfigCommand                       (kafka-configs.sh; 4.4: no longer kafka.admin.*)
#   org.apache.kafka.tools.ConsoleProducer / org.apache.kafka.tools.consumer.ConsoleConsumer
#   org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance (use KAFKA_PERF=1)
#   kafka.tools.StorageTool
# env: KAFKA_HEAP_OPTS (-Xmx256m), KAFKA_PERF=1 (G1 + full JIT), KAFKA_OPTS,
#      KAFKA_LOG4J_OPTS (replaces the quiet log4j2 config), KAFKA_VERSION
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# >= 1)) || { sed -n '2,13p' "$0" >&2; exit 2; }

"$KAFKA_SCRIPTS_DIR/fetch.sh" >/dev/null

heap_opts=(-Xmx256m)
if [[ -n ${KAFKA_HEAP_OPTS:-} ]]; then
  read -r -a heap_opts <<<"$KAFKA_HEAP_OPTS"
fi
mapfile -t perf_opts < <(kafka_jvm_perf_opts)
log_opts=("-Dlog4j2.configurationFile=$KAFKA_SCRIPTS_DIR/tools-log4j2.properties")
if [[ -n ${KAFKA_LOG4J_OPTS:-} ]]; then
  read -r -a log_opts <<<"$KAFKA_LOG4J_OPTS"
fi
extra_opts=()
if [[ -n ${KAFKA_OPTS:-} ]]; then
  read -r -a extra_opts <<<"$KAFKA_OPTS"
fi

# shutdownHookEnabled=false: tools whose first log call happens while the JVM
# exits (ConsoleProducer) would otherwise warn "Unable to register Log4j shutdown hook".
exec java "${heap_opts[@]}" "${perf_opts[@]}" "${log_opts[@]}" -Dlog4j2.shutdownHookEnabled=false \
  "${extra_opts[@]}" \
  -cp "$KAFKA_LIBS/*" "$@"
