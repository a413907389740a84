#!/usr/bin/env bash
# Stop a broker started by start.sh: SIGTERM (controlled shutdown), wait up to
# KAFKA_STOP_TIMEOUT (30) seconds, then SIGKILL. Idempotent: exits 0 if none runs.
#
# usage: stop.sh [--purge] [name]     (name defaults to "default")
#   --purge   also delete the state dir .cache/kafka/run/<name> (data, log, config)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
name=default
for arg in "$@"; do
  case $arg in
    --purge) purge=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) kafka_die "unknown option $arg" ;;
    *) name=$arg ;;
  esac
done
kafka_check_name "$name"

state=$KAFKA_RUN_DIR/$name
pidfile=$state/kafka.pid
timeout=${KAFKA_STOP_TIMEOUT:-30}

if [[ -f $pidfile ]]; then
  pid=$(<"$pidfile")
  if kafka_pid_alive "$pid" "$state/server.properties"; then
    kafka_log "stopping broker '$name' (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while kafka_pid_running "$pid" && ((SECONDS < deadline)); do
      sleep 0.1
    done
    killed=0
    if kafka_pid_running "$pid"; then
      kafka_log "still running after ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      killed=1
      while kafka_pid_running "$pid"; do sleep 0.1; done
    fi
    # A class-data-sharing archive dumped at exit (see start.sh): keep it for
    # later starts of this Kafka version, unless the JVM was killed mid-dump.
    jsa=$state/kafka.jsa
    home=$KAFKA_HOME
    [[ -s $state/kafka_home ]] && home=$(<"$state/kafka_home")
    if [[ -s $jsa ]] && ((killed == 0)) && [[ -d $home && ! -s $home/kafka.jsa ]]; then
      mv -f "$jsa" "$home/kafka.jsa"
    fi
    rm -f "$jsa"
    kafka_log "stopped broker '$name'"
  else
    kafka_log "broker '$name' not running (stale pid file)"
  fi
  rm -f "$pidfile" "$state/brokers"
else
  kafka_log "broker '$name' not running"
fi

if ((purge)) && [[ -d $state ]]; then
  rm -rf "$state"
  kafka_log "purged $state"
fi
