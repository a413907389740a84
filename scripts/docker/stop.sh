#!/usr/bin/env bash
# Stop the dockerd that start.sh started (and only that one): SIGTERM, wait up
# to DOCKER_STOP_TIMEOUT (30) seconds, then SIGKILL. A no-op when start.sh did
# not start the running daemon (no pid file) or nothing runs.
#
# usage: stop.sh [--rm-containers]
#   --rm-containers  first remove containers labelled org.testcontainers=true
#                    (leaked when a test process died with ryuk disabled)
# Images stay in dockerd's storage (/var/lib/docker), so a later start.sh
# finds them again.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rm_containers=0
for arg in "$@"; do
  case $arg in
    --rm-containers) rm_containers=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) docker_die "unknown argument $arg" ;;
  esac
done
timeout_s=${DOCKER_STOP_TIMEOUT:-30}

if ((rm_containers)) && docker_ready; then
  mapfile -t ids < <(docker ps -aq --filter label=org.testcontainers=true)
  if ((${#ids[@]})); then
    docker_log "removing ${#ids[@]} testcontainers container(s)"
    docker rm -f "${ids[@]}" >/dev/null
  fi
fi

if [[ ! -f $DOCKERD_PIDFILE ]]; then
  docker_log "no dockerd started by start.sh; nothing to stop"
  exit 0
fi
pid=$(<"$DOCKERD_PIDFILE")
if ! dockerd_alive "$pid"; then
  docker_log "dockerd (pid $pid) not running (stale pid file)"
  rm -f "$DOCKERD_PIDFILE"
  exit 0
fi

docker_log "stopping dockerd (pid $pid)"
kill -TERM "$pid"
deadline=$((SECONDS + timeout_s))
while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  docker_log "still running after ${timeout_s}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
fi
rm -f "$DOCKERD_PIDFILE"
docker_log "stopped dockerd"
