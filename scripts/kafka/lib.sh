# shellcheck shell=bash disable=SC2034
# Shared settings for scripts/kafka/*.sh. Sourced, never run.

KAFKA_SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$KAFKA_SCRIPTS_DIR/../.." && pwd)

# Newest 4.x that resolves from Maven Central and starts here (see README.md).
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
# Kafka 4.x logs through SLF4J 1.7 -> log4j2; the pom carries no binding, so
# fetch.sh adds log4j-slf4j-impl (+ log4j-api/-core, which 4.0.x lacks).
# 2.25.5 is what kafka-server 4.4.0 (and 4.2.2) declare.
KAFKA_LOG4J_VERSION=${KAFKA_LOG4J_VERSION:-2.25.5}

KAFKA_CACHE_DIR=${KAFKA_CACHE_DIR:-$REPO_ROOT/.cache/kafka}
KAFKA_HOME=$KAFKA_CACHE_DIR/$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_HOME/libs
KAFKA_RUN_DIR=$KAFKA_CACHE_DIR/run

kafka_log() { printf '%s\n' "[kafka] $*" >&2; }
kafka_die() { kafka_log "error: $*"; exit 1; }

kafka_check_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || kafka_die "bad broker name '$1' (use [A-Za-z0-9._-])"
}

# JVM options. KAFKA_PERF=1: G1 + full JIT (perf runs); default: fast startup.
kafka_jvm_perf_opts() {
  if [[ ${KAFKA_PERF:-0} == 1 ]]; then
    printf '%s\n' -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  else
    printf '%s\n' -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  fi
  printf '%s\n' -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
}

# Is $1 a live pid whose command line mentions $2?
kafka_pid_alive() {
  local pid=$1 needle=$2
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r /proc/$pid/cmdline ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$needle"
}

# Is process $1 still running? One whose threads are all zombies is not: it
# has exited and released its ports and files, only its parent has not
# reaped it yet (brokers are reparented to init, which can take a second or
# two). Its main thread alone being a zombie is not enough: after a SIGKILL
# the JVM's other threads hold the sockets a little longer.
kafka_pid_running() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ -d /proc/$1/task ]] || return 0
  # The state follows the thread name in parentheses, which may hold
  # spaces; threads may vanish while cat reads them.
  { cat /proc/"$1"/task/*/stat 2>/dev/null || true; } | awk '{ sub(/.*\) /, ""); if ($1 != "Z") live = 1 } END { exit !live }'
}

# Does something accept TCP connections on 127.0.0.1:$1?
kafka_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
