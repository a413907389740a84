#!/usr/bin/env bash
# Compile integration/testdata/interop/Interop.java against the cached Kafka
# jars (scripts/kafka/fetch.sh) into .cache/interop/classes, only when the
# source, the jars or the JDK changed. Safe to run concurrently (flock).
# Prints the classes directory on stdout; progress and errors go to stderr.
#
# usage: scripts/interop/build.sh
# env:   INTEROP_CACHE_DIR (default <repo>/.cache/interop), plus scripts/kafka's
#        KAFKA_VERSION / KAFKA_CACHE_DIR.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../kafka/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../kafka/lib.sh"

src=$REPO_ROOT/integration/testdata/interop/Interop.java
cache=${INTEROP_CACHE_DIR:-$REPO_ROOT/.cache/interop}
classes=$cache/classes
stamp=$classes/.stamp

interop_log() { printf '%s\n' "[interop] $*" >&2; }

[[ -r $src ]] || { interop_log "error: $src not found"; exit 1; }
command -v javac >/dev/null || { interop_log "error: javac not found (a JDK 17+ is needed)"; exit 1; }
command -v java >/dev/null || { interop_log "error: java not found (a JDK 17+ is needed)"; exit 1; }

"$KAFKA_SCRIPTS_DIR/fetch.sh" >/dev/null
clients=("$KAFKA_LIBS"/kafka-clients-*.jar)
[[ -f ${clients[0]} ]] || { interop_log "error: no kafka-clients jar in $KAFKA_LIBS"; exit 1; }

# What the classes depend on: the source, the kafka-clients jar, the JDK
# (identified by its resolved javac binary and that file's mtime; running
# `javac -version` would cost a JVM start on every call).
javac_bin=$(readlink -f "$(command -v javac)")
want=$({
  sha256sum "$src" | cut -d' ' -f1
  printf '%s\n' "${clients[0]##*/}" "$javac_bin"
  stat -c %Y "$javac_bin"
} | sha256sum | cut -d' ' -f1)

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ -f $stamp && $(<"$stamp") == "$want" && -f $classes/Interop.class ]]; then
  printf '%s\n' "$classes"
  exit 0
fi

interop_log "compiling $(basename "$src") against ${clients[0]##*/}"
tmp=$(mktemp -d "$cache/classes.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
javac -Xlint:all -Xlint:-options --release 17 -encoding UTF-8 \
  -cp "${clients[0]}" -d "$tmp" "$src" >&2
printf '%s\n' "$want" >"$tmp/.stamp"
chmod 755 "$tmp"
rm -rf "$classes"
mv "$tmp" "$classes"
trap - EXIT
printf '%s\n' "$classes"
