#!/usr/bin/env bash
# Regenerates internal/fetch's real-broker fixtures (see ../README.md):
#   1. starts a fresh Apache Kafka broker (scripts/kafka/start.sh),
#   2. writes the fx-* topics with Fixtures.java on Kafka's Java client and
#      keeps its record listing as ../broker/expected.ndjson,
#   3. captures raw Fetch responses with ../capture into ../broker,
#   4. stops and deletes the broker.
#
# usage: internal/fetch/testdata/java/capture.sh
# env:   KAFKA_PORT / KAFKA_CONTROLLER_PORT (19392 / 19393), FIXTURE_BROKER
#        (broker name, fetch-fixtures), KAFKA_CACHE_DIR and scripts/kafka's
#        other variables.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../../../scripts/kafka/lib.sh
. "$here/../../../../scripts/kafka/lib.sh"
out=$here/../broker
name=${FIXTURE_BROKER:-fetch-fixtures}
export KAFKA_PORT=${KAFKA_PORT:-19392} KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19393}

"$KAFKA_SCRIPTS_DIR/fetch.sh" >/dev/null
clients=("$KAFKA_LIBS"/kafka-clients-*.jar)
classes=$REPO_ROOT/.cache/fetch-fixtures/classes
rm -rf "$classes"
mkdir -p "$classes"
javac -Xlint:all -Xlint:-options --release 17 -encoding UTF-8 -cp "${clients[0]}" -d "$classes" "$here/Fixtures.java"

cp=$classes
for pat in kafka-clients lz4-java snappy-java zstd-jni slf4j-api log4j-api log4j-core log4j-slf4j-impl; do
  jars=("$KAFKA_LIBS/$pat"-[0-9]*.jar)
  cp+=":${jars[0]}"
done

# A fresh broker whose log cleaner runs often (fx-compacted is compacted
# before Fixtures.java returns).
"$KAFKA_SCRIPTS_DIR/stop.sh" --purge "$name" >/dev/null
trap '"$KAFKA_SCRIPTS_DIR/stop.sh" --purge "$name" >/dev/null' EXIT
line=$(KAFKA_EXTRA_PROPS='log.cleaner.backoff.ms=200' "$KAFKA_SCRIPTS_DIR/start.sh" "$name")
export "${line?}"

mkdir -p "$out"
rm -f "$out"/*.bin "$out"/fixtures.json "$out"/expected.ndjson
java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dlog4j2.configurationFile="$KAFKA_SCRIPTS_DIR/tools-log4j2.properties" \
  -cp "$cp" Fixtures "$KAFKA_BROKERS" >"$out/expected.ndjson"
(cd "$REPO_ROOT" && go run ./internal/fetch/testdata/capture -broker "$KAFKA_BROKERS" \
  -expected "$out/expected.ndjson" -out "$out")
echo "capture: fixtures in $out" >&2
