#!/usr/bin/env bash
# Start SeaweedFS (master, volume server, filer and S3 gateway in one `weed
# server` process) in the background on 127.0.0.1, wait until the S3 gateway
# stores objects, then print
#   MQ_S3_ENDPOINT=http://127.0.0.1:<port>
# on stdout (all else goes to stderr), e.g.  eval "$(scripts/s3/start.sh)"
#
# The gateway serves anonymous S3 (no identities configured): any client,
# signed or not, may create buckets and objects. Loopback only.
#
# usage: start.sh [name]        state dir: .cache/s3/run/<name> (default: default)
# env:
#   S3_PORT (8333)       the S3 port; the next seven ports are SeaweedFS's own:
#                        +1 master, +2 master gRPC, +3 volume, +4 volume gRPC,
#                        +5 filer, +6 filer gRPC, +7 S3 gRPC
#   S3_START_TIMEOUT     seconds to wait for readiness (60)
#   S3_CACHE_DIR         binary + state (default <repo>/.cache/s3)
#   SEAWEEDFS_VERSION    see lib.sh
# A stopped server started again under the same name keeps its data (stop.sh
# without --purge).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

name=${1:-default}
s3_check_name "$name"
port=${S3_PORT:-8333}
timeout=${S3_START_TIMEOUT:-60}
[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port + 7 < 65536)) || s3_die "bad S3_PORT=$port"

state=$S3_RUN_DIR/$name
data=$state/data
logfile=$state/weed.log
pidfile=$state/weed.pid
endpoint_file=$state/endpoint
mkdir -p "$data"

if [[ -f $pidfile ]]; then
  pid=$(<"$pidfile")
  if s3_pid_alive "$pid" "$data"; then
    if [[ -f $endpoint_file ]]; then
      s3_log "SeaweedFS '$name' already running (pid $pid)"
      printf 'MQ_S3_ENDPOINT=%s\n' "$(<"$endpoint_file")"
      exit 0
    fi
    s3_die "SeaweedFS '$name' running (pid $pid) but not ready; run stop.sh $name"
  fi
  rm -f "$pidfile" "$endpoint_file"
fi

for p in $(seq "$port" $((port + 7))); do
  if s3_port_open "$p"; then
    s3_die "127.0.0.1:$p is already in use (another server? set S3_PORT; SeaweedFS uses S3_PORT..S3_PORT+7)"
  fi
done

weed=$("$S3_SCRIPTS_DIR/install.sh")

printf '%s\n' "$port" >"$state/port" # for stop.sh
s3_log "starting SeaweedFS $SEAWEEDFS_VERSION '$name', S3 on 127.0.0.1:$port (log: $logfile)"
: >"$logfile"
# setsid + all fds redirected: the server outlives this script and never
# holds its stdout. Unix sockets go to the state dir instead of /tmp.
# Every bucket is a SeaweedFS collection with volumes of its own, made on its
# first write (1 at a time here instead of 7) and sparse (64 MiB at most):
# -volume.max=0 sizes the pool from the free disk space, so tests can make
# many buckets.
# shellcheck disable=SC2016 # $$ and $0 expand in the child shell
WEED_MASTER_VOLUME_GROWTH_COPY_1=1 setsid bash -c 'printf "%s\n" "$$" >"$0"; exec "$@"' "$pidfile" \
  "$weed" server -dir="$data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3 -s3.port="$port" -s3.port.grpc=$((port + 7)) -s3.localSocket="$state/s3.sock" \
  -s3.port.iceberg=0 -s3.port.lance=0 \
  -master.port=$((port + 1)) -master.port.grpc=$((port + 2)) -master.volumeSizeLimitMB=64 \
  -volume.port=$((port + 3)) -volume.port.grpc=$((port + 4)) -volume.max=0 \
  -filer -filer.port=$((port + 5)) -filer.port.grpc=$((port + 6)) -filer.localSocket="$state/filer.sock" \
  </dev/null >>"$logfile" 2>&1 &
for _ in $(seq 1 100); do
  [[ -s $pidfile ]] && break
  sleep 0.05
done
[[ -s $pidfile ]] || s3_die "server process did not start"
pid=$(<"$pidfile")

# Ready = a bucket can be created and an object written and deleted (the S3
# port opens before the filer and the volume server take writes).
probe=mq-s3-ready
deadline=$((SECONDS + timeout))
while :; do
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$pidfile"
    s3_log "SeaweedFS exited during startup; last log lines:"
    tail -n 40 "$logfile" >&2
    exit 1
  fi
  bucket_status=$(s3_http "$port" PUT "/$probe")
  if [[ $bucket_status == 200 || $bucket_status == 409 ]] && [[ $(s3_http "$port" PUT "/$probe/probe") == 200 ]]; then
    s3_http "$port" DELETE "/$probe/probe" >/dev/null
    break
  fi
  if ((SECONDS >= deadline)); then
    s3_log "SeaweedFS not ready after ${timeout}s; last log lines:"
    tail -n 40 "$logfile" >&2
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    exit 1
  fi
  sleep 0.2
done
endpoint=http://127.0.0.1:$port
printf '%s\n' "$endpoint" >"$endpoint_file"
s3_log "SeaweedFS '$name' ready (pid $pid): $endpoint"
printf 'MQ_S3_ENDPOINT=%s\n' "$endpoint"
