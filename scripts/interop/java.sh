#!/usr/bin/env bash
# Run the Interop tool (integration/testdata/interop/Interop.java) on the Java
# Kafka client, compiling it first when needed (build.sh). Logging is quiet:
# WARN and above, to stderr; stdout carries only the tool's output.
#
# usage: scripts/interop/java.sh produce   <bootstrap> <topic> <compression>[,...] <count>
#        scripts/interop/java.sh consume   <bootstrap> <topic> <count>
#        scripts/interop/java.sh partition <bootstrap> <topic> <key>|hex:<hex>...
# env:   INTEROP_TIMEOUT_MS (consume, default 30000), JAVA_OPTS (extra JVM options)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../kafka/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../kafka/lib.sh"

classes=$("$(dirname "${BASH_SOURCE[0]}")/build.sh")

# Only the jars the client needs (faster start than all of Kafka's libs):
# kafka-clients, its compression codecs, SLF4J and the log4j2 binding.
cp=$classes
for pat in kafka-clients lz4-java snappy-java zstd-jni slf4j-api log4j-api log4j-core log4j-slf4j-impl; do
  jars=("$KAFKA_LIBS/$pat"-[0-9]*.jar)
  if [[ ! -f ${jars[0]} ]]; then
    cp="$classes:$KAFKA_LIBS/*" # unexpected layout: take everything
    break
  fi
  cp+=":${jars[0]}"
done

extra=()
if [[ -n ${JAVA_OPTS:-} ]]; then
  read -r -a extra <<<"$JAVA_OPTS"
fi

exec java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
  -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$KAFKA_SCRIPTS_DIR/tools-log4j2.properties" \
  -Dlog4j2.shutdownHookEnabled=false \
  "${extra[@]}" -cp "$cp" Interop "$@"
