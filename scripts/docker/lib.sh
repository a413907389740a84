# shellcheck shell=bash disable=SC2034
# Shared settings for scripts/docker/*.sh. Sourced, never run.

DOCKER_SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$DOCKER_SCRIPTS_DIR/../.." && pwd)

# pid file and log of a dockerd started by start.sh (git-ignored .cache/).
DOCKER_CACHE_DIR=${DOCKER_CACHE_DIR:-$REPO_ROOT/.cache/docker}
DOCKERD_PIDFILE=$DOCKER_CACHE_DIR/dockerd.pid
DOCKERD_LOG=$DOCKER_CACHE_DIR/dockerd.log

docker_log() { printf '%s\n' "[docker] $*" >&2; }
docker_die() { docker_log "error: $*"; exit 1; }

# Does a Docker daemon answer? (bounded: a wedged daemon must not hang us)
docker_ready() {
  command -v docker >/dev/null 2>&1 || return 1
  timeout 10 docker info >/dev/null 2>&1
}

# Is $1 a live pid of a dockerd?
dockerd_alive() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r /proc/$pid/comm ]] || return 0
  [[ $(<"/proc/$pid/comm") == dockerd ]]
}
