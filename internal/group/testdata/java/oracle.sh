#!/usr/bin/env bash
# Compile AssignorOracle.java (javac --release 17) against the Kafka jars
# cached by scripts/kafka/fetch.sh and run it: JSON lines on stdin, one JSON
# line per request on stdout (see the comment at the top of the source).
#
# usage: oracle.sh < requests.jsonl
# env:   ORACLE_CLASSES_DIR  where to compile (default: a fresh temporary dir)
#        KAFKA_CACHE_DIR, KAFKA_VERSION  as for scripts/kafka (default
#                            <repo>/.cache/kafka and 4.4.0)
# Fails (exit 1, reason on stderr) when java, javac or the jars are missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
libs=${KAFKA_CACHE_DIR:-$repo/.cache/kafka}/${KAFKA_VERSION:-4.4.0}/libs

die() { printf '[oracle] error: %s\n' "$*" >&2; exit 1; }
command -v javac >/dev/null || die "javac not found (a JDK 17+ is needed)"
command -v java >/dev/null || die "java not found (a JDK 17+ is needed)"

# kafka-clients, Jackson (JSON) and SLF4J's API (no binding: logs are dropped).
cp=
for pat in kafka-clients jackson-databind jackson-core jackson-annotations slf4j-api; do
  jars=("$libs/$pat"-[0-9]*.jar)
  [[ -f ${jars[0]} ]] || die "no $pat jar in $libs (run scripts/kafka/fetch.sh with KAFKA_CACHE_DIR set)"
  cp+=${cp:+:}${jars[0]}
done

classes=${ORACLE_CLASSES_DIR:-}
if [[ -z $classes ]]; then
  classes=$(mktemp -d)
  trap 'rm -rf "$classes"' EXIT
fi
if [[ ! -f $classes/AssignorOracle.class || $here/AssignorOracle.java -nt $classes/AssignorOracle.class ]]; then
  javac -Xlint:all -Xlint:-options --release 17 -encoding UTF-8 -cp "$cp" -d "$classes" "$here/AssignorOracle.java" >&2
fi
java -Xmx512m -XX:+UseSerialGC -Xshare:auto -Dslf4j.internal.verbosity=ERROR \
  -cp "$classes:$cp" AssignorOracle
