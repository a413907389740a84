#!/usr/bin/env bash
# Make a Docker daemon available for the container-mode tests.
#
#   - a daemon already answers `docker info`  -> nothing to do;
#   - dockerd missing                          -> apt-get install docker.io
#     (apt-get update only if the install fails without it; needs root);
#   - otherwise start dockerd in the background with the vfs storage driver
#     (works on any filesystem, including inside containers and VMs without
#     overlayfs), log to .cache/docker/dockerd.log, record its pid in
#     .cache/docker/dockerd.pid (so stop.sh stops only this daemon), and wait
#     until `docker info` answers.
# Idempotent. Progress goes to stderr.
#
# The default bridge gets an explicit address (--bip): then `docker network
# inspect bridge` lists its gateway, which testcontainers-go uses as the
# host of mapped ports when it believes it runs inside a container (a
# /.dockerenv file exists). Without it, it falls back to the default route's
# gateway, which is not this machine when dockerd runs here.
#
# env: DOCKER_START_TIMEOUT (60 s), DOCKERD_STORAGE_DRIVER (vfs),
#      DOCKERD_BIP (172.17.0.1/16, Docker's usual default; empty: no --bip),
#      DOCKERD_DATA_ROOT (dockerd's default, /var/lib/docker),
#      DOCKERD_EXTRA_ARGS (word list appended to dockerd's arguments),
#      DOCKER_CACHE_DIR (<repo>/.cache/docker)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

timeout_s=${DOCKER_START_TIMEOUT:-60}
[[ $timeout_s =~ ^[0-9]+$ ]] || docker_die "bad DOCKER_START_TIMEOUT=$timeout_s"

if docker_ready; then
  docker_log "a Docker daemon is already running ($(docker info --format '{{.ServerVersion}}, storage driver {{.Driver}}' 2>/dev/null || echo '?'))"
  exit 0
fi

mkdir -p "$DOCKER_CACHE_DIR"
# Serialize concurrent starts.
exec 9>"$DOCKER_CACHE_DIR/.lock"
flock 9
if docker_ready; then
  docker_log "a Docker daemon is already running"
  exit 0
fi

# --- install -------------------------------------------------------------------
if ! command -v dockerd >/dev/null 2>&1; then
  ((EUID == 0)) || docker_die "dockerd not found; install docker.io as root (apt-get install docker.io)"
  command -v apt-get >/dev/null || docker_die "dockerd not found and no apt-get to install it"
  export DEBIAN_FRONTEND=noninteractive
  t0=$SECONDS
  docker_log "installing docker.io"
  if ! apt-get install -y -q --no-install-recommends docker.io >&2; then
    docker_log "install failed; running apt-get update and retrying"
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends docker.io >&2
  fi
  command -v dockerd >/dev/null 2>&1 || docker_die "docker.io installed but dockerd still not on PATH"
  docker_log "installed docker.io in $((SECONDS - t0)) s"
fi
command -v docker >/dev/null 2>&1 || docker_die "docker CLI not found"

# --- start -----------------------------------------------------------------------
if [[ -f $DOCKERD_PIDFILE ]]; then
  pid=$(<"$DOCKERD_PIDFILE")
  if dockerd_alive "$pid"; then
    docker_log "dockerd (pid $pid) runs but does not answer yet; waiting for it"
  else
    rm -f "$DOCKERD_PIDFILE"
  fi
fi

if [[ ! -f $DOCKERD_PIDFILE ]]; then
  # A dockerd we did not start (no pid file) that does not answer: refuse to
  # start a second one on the same socket and data root.
  if pgrep -x dockerd >/dev/null 2>&1; then
    docker_die "a dockerd not started by this script is running but not answering (pids: $(pgrep -x dockerd | tr '\n' ' ')); fix or stop it first"
  fi
  ((EUID == 0)) || docker_die "starting dockerd needs root"
  args=(--storage-driver="${DOCKERD_STORAGE_DRIVER:-vfs}")
  bip=${DOCKERD_BIP-172.17.0.1/16}
  [[ -n $bip ]] && args+=(--bip="$bip")
  [[ -n ${DOCKERD_DATA_ROOT:-} ]] && args+=(--data-root="$DOCKERD_DATA_ROOT")
  if [[ -n ${DOCKERD_EXTRA_ARGS:-} ]]; then
    read -r -a extra <<<"$DOCKERD_EXTRA_ARGS"
    args+=("${extra[@]}")
  fi
  docker_log "starting dockerd ${args[*]} (log: $DOCKERD_LOG)"
  : >>"$DOCKERD_LOG"
  printf '\n==== %s start.sh: dockerd %s\n' "$(date -Is)" "${args[*]}" >>"$DOCKERD_LOG"
  # setsid + all fds redirected: the daemon outlives this script and never
  # holds the caller's stdout. setsid may fork, so the child writes its own
  # pid before exec'ing dockerd.
  # shellcheck disable=SC2016 # $$ and $0 expand in the child shell
  setsid bash -c 'printf "%s\n" "$$" >"$0"; exec "$@"' "$DOCKERD_PIDFILE" \
    dockerd "${args[@]}" </dev/null >>"$DOCKERD_LOG" 2>&1 &
  for _ in $(seq 1 100); do
    [[ -s $DOCKERD_PIDFILE ]] && break
    sleep 0.05
  done
  [[ -s $DOCKERD_PIDFILE ]] || docker_die "dockerd did not start"
fi
pid=$(<"$DOCKERD_PIDFILE")

t0=$(date +%s%N)
deadline=$((SECONDS + timeout_s))
until docker_ready; do
  if ! dockerd_alive "$pid"; then
    rm -f "$DOCKERD_PIDFILE"
    docker_log "dockerd exited during startup; last log lines:"
    tail -n 30 "$DOCKERD_LOG" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    docker_log "dockerd (pid $pid) not ready after ${timeout_s}s; last log lines:"
    tail -n 30 "$DOCKERD_LOG" >&2
    exit 1
  fi
  sleep 0.2
done
docker_log "dockerd ready in $((($(date +%s%N) - t0) / 1000000)) ms (pid $pid, $(docker info --format '{{.ServerVersion}}, storage driver {{.Driver}}' 2>/dev/null || echo '?'))"
