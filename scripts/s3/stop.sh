#!/usr/bin/env bash
# Stop a SeaweedFS started by start.sh: SIGTERM, up to S3_STOP_TIMEOUT (3) s,
# then SIGKILL. --purge also deletes its state dir (data and log). Exits 0 when
# nothing runs. SeaweedFS 4.48's graceful stop hangs once its filer's gRPC
# server has stopped, so the SIGKILL is the usual end; what it had written is
# kept (a restart under the same name serves it).
#
# usage: stop.sh [--purge] [name]
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
if [[ ${1:-} == --purge ]]; then
  purge=1
  shift
fi
name=${1:-default}
s3_check_name "$name"
state=$S3_RUN_DIR/$name
pidfile=$state/weed.pid
timeout=${S3_STOP_TIMEOUT:-3}

if [[ -f $pidfile ]]; then
  pid=$(<"$pidfile")
  if s3_pid_alive "$pid" "$state/data"; then
    s3_log "stopping SeaweedFS '$name' (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      s3_log "still running after ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
  fi
  rm -f "$pidfile" "$state/endpoint"
fi
# SeaweedFS puts the Unix sockets of its master and volume gRPC servers in /tmp.
if [[ -f $state/port ]] && ! [[ -f $pidfile ]]; then
  port=$(<"$state/port")
  if [[ $port =~ ^[0-9]+$ ]]; then
    for p in $(seq "$port" $((port + 7))); do
      rm -f /tmp/seaweedfs-{master,volume,filer,s3}-grpc-"$p".sock
    done
  fi
fi
if ((purge)); then
  rm -rf "$state"
fi
