#!/usr/bin/env bash
# Build the local Kafka test image for testcontainers-go's kafka module,
# without any image registry:
#
#   1. local/debian-jre17: Debian bookworm minbase rootfs (debootstrap, from
#      the Debian mirror this machine's apt uses) + openjdk-17-jre-headless
#      installed in a chroot, turned into an image with `docker import`;
#   2. local/kafka:<KAFKA_VERSION>: FROM local/debian-jre17, with the jars
#      from scripts/kafka/fetch.sh (Maven Central) and the Confluent-layout
#      scripts in this folder.
#
# Each image is built only when missing (the Kafka image also when its build
# context changed); --force rebuilds both. Prints the Kafka image name on
# stdout; progress and step timings go to stderr. Needs root (debootstrap,
# chroot, mount) for step 1 and a running Docker daemon (scripts/docker/start.sh).
#
# usage: build.sh [--force]
# env: KAFKA_VERSION (see scripts/kafka/lib.sh), DEBIAN_MIRROR (default: from
#      /etc/apt/sources.list{,.d/*}), DEBIAN_SUITE (bookworm),
#      KAFKA_BASE_IMAGE (local/debian-jre17), KAFKA_IMAGE_CACHE_DIR
#      (<repo>/.cache/kafka-image), KAFKA_IMAGE_KEEP_ROOTFS=1 (keep the rootfs
#      after import; by default it is deleted, the image is the cache)
set -euo pipefail
IMAGE_SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# KAFKA_VERSION, REPO_ROOT, kafka_log/kafka_die
# shellcheck source-path=SCRIPTDIR source=../kafka/lib.sh
. "$IMAGE_SCRIPTS_DIR/../kafka/lib.sh"

log() { printf '%s\n' "[kafka-image] $*" >&2; }
die() { log "error: $*"; exit 1; }

force=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown argument $arg" ;;
  esac
done

suite=${DEBIAN_SUITE:-bookworm}
base_image=${KAFKA_BASE_IMAGE:-local/debian-jre17}
kafka_image=local/kafka:$KAFKA_VERSION
cache=${KAFKA_IMAGE_CACHE_DIR:-$REPO_ROOT/.cache/kafka-image}
rootfs=$cache/rootfs
context=$cache/context

# step timing: "name seconds" lines, summarized at the end
declare -a timings=()
step_start() { step_name=$1; step_t0=$(date +%s%N); log "==> $1"; }
step_end() {
  local ms=$((($(date +%s%N) - step_t0) / 1000000))
  timings+=("$(printf '%-28s %6d.%01d s' "$step_name" $((ms / 1000)) $((ms % 1000 / 100)))")
  log "    $step_name: $((ms / 1000)).$((ms % 1000 / 100)) s"
}

command -v docker >/dev/null 2>&1 || die "docker CLI not found (run scripts/docker/start.sh)"
timeout 20 docker info >/dev/null 2>&1 \
  || die "no Docker daemon answers 'docker info' (start one with scripts/docker/start.sh)"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

mkdir -p "$cache"
exec 8>"$cache/.lock"   # serialize concurrent builds
flock 8

# --- Debian mirror ------------------------------------------------------------------
# Prints "URI SUITE COMPONENTS..." for every deb source of a $suite* suite.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    # one-line style: deb [options] uri suite components...
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk -v s="$suite" '
      $1 == "deb" && index($3, s) == 1 { out = $2 " " $3; for (i = 4; i <= NF; i++) out = out " " $i; print out }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    # deb822 style: stanzas separated by blank lines
    awk -v s="$suite" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no") {
          n = split(uris, u, " "); m = split(suites, su, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
            if (index(su[j], s) == 1) print u[i] " " su[j] " " comps
        }
        types = uris = suites = comps = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "") }
      key == "types" { types = $0 } key == "uris" { uris = $0 } key == "suites" { suites = $0 }
      key == "components" { comps = $0 } key == "enabled" { enabled = tolower($0) }
      END { flush() }' "$f"
  done
}

# --- 1. base image ------------------------------------------------------------------
build_base() {
  ((EUID == 0)) || die "building $base_image needs root (debootstrap, chroot, mount)"
  if ! command -v debootstrap >/dev/null 2>&1; then
    step_start "install debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends debootstrap >&2; then
      apt-get update -q >&2
      apt-get install -y -q --no-install-recommends debootstrap >&2
    fi
    step_end
  fi

  local sources mirror
  sources=$(apt_sources | sort -u)
  mirror=${DEBIAN_MIRROR:-}
  if [[ -z $mirror ]]; then
    mirror=$(awk -v s="$suite" '$2 == s { print $1; exit }' <<<"$sources")
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  log "Debian mirror: $mirror (suite $suite)"

  # Never delete a rootfs with something still mounted inside it.
  if mountpoint -q "$rootfs/proc" 2>/dev/null; then umount "$rootfs/proc"; fi
  rm -rf "$rootfs"
  mkdir -p "$rootfs"
  trap 'mountpoint -q "$rootfs/proc" 2>/dev/null && umount "$rootfs/proc"' EXIT

  step_start "debootstrap minbase"
  if ! debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    tail -n 30 "$cache/debootstrap.log" >&2
    [[ -f $rootfs/debootstrap/debootstrap.log ]] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (full log: $cache/debootstrap.log)"
  fi
  step_end

  # The chroot's apt gets the same bookworm* suites as the host (updates,
  # security), else only the base suite from $mirror.
  if [[ -n $sources && -z ${DEBIAN_MIRROR:-} ]]; then
    awk '{ print "deb " $0 }' <<<"$sources" >"$rootfs/etc/apt/sources.list"
  else
    printf 'deb %s %s main\n' "$mirror" "$suite" >"$rootfs/etc/apt/sources.list"
  fi
  log "chroot apt sources: $(tr '\n' ';' <"$rootfs/etc/apt/sources.list")"
  # No services may start inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true

  step_start "chroot install JRE 17"
  mount -t proc proc "$rootfs/proc"
  if ! chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
      sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends openjdk-17-jre-headless \
             && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /tmp/*' \
      >"$cache/chroot-install.log" 2>&1; then
    tail -n 30 "$cache/chroot-install.log" >&2
    die "installing openjdk-17-jre-headless in the chroot failed (full log: $cache/chroot-install.log)"
  fi
  # (the java launcher finds libjli.so through /proc/self/exe: check before umount)
  local java_version
  java_version=$(chroot "$rootfs" java -version 2>&1) || { printf '%s\n' "$java_version" >&2; die "java does not run in the chroot"; }
  log "    ${java_version%%$'\n'*}"
  umount "$rootfs/proc"
  trap - EXIT
  # Slimmer image: with vfs every container starts with a full copy of it.
  # Docs (except copyright files), man/info pages and message catalogues: ~50 MB.
  find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
  find "$rootfs/usr/share/doc" -type l -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale}/* "$rootfs"/var/cache/debconf/*-old
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  : >"$rootfs/etc/resolv.conf"   # Docker bind-mounts its own
  rm -rf "$rootfs/debootstrap"
  step_end

  step_start "docker import"
  local java_home
  java_home=$(dirname "$(dirname "$(readlink -f "$rootfs/usr/bin/java" | sed "s#^$rootfs##")")")
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV JAVA_HOME=${java_home#"$rootfs"}" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $suite + openjdk-17-jre-headless ($mirror)" \
    - "$base_image" >/dev/null
  step_end
  log "$base_image: $(docker image inspect --format '{{.Size}}' "$base_image" | awk '{ printf "%d MB", $1 / 1e6 }')"

  if [[ ${KAFKA_IMAGE_KEEP_ROOTFS:-0} != 1 ]]; then
    rm -rf "$rootfs"
  fi
}

# Images replaced by this run; removed at the end (with vfs each costs its full size).
old_images=()
if ((force)) || ! image_exists "$base_image"; then
  old_images+=("$(docker image inspect --format '{{.Id}}' "$base_image" 2>/dev/null || true)")
  build_base
  base_built=1
else
  log "$base_image exists (use --force to rebuild)"
  base_built=0
fi

# --- 2. Kafka image ---------------------------------------------------------------------
step_start "fetch Kafka $KAFKA_VERSION jars"
libs=$("$REPO_ROOT/scripts/kafka/fetch.sh")
[[ -d $libs ]] || die "scripts/kafka/fetch.sh printed '$libs', not a directory"
step_end

step_start "assemble build context"
rm -rf "$context"
root=$context/root
mkdir -p "$root/opt/kafka/libs" "$root/etc/confluent/docker" "$root/usr/bin" "$root/etc/kafka" \
  "$root/var/lib/kafka/data" "$root/var/log/kafka"
cp "$IMAGE_SCRIPTS_DIR/Dockerfile" "$context/"
cp "$IMAGE_SCRIPTS_DIR"/confluent/* "$root/etc/confluent/docker/"
cp "$IMAGE_SCRIPTS_DIR"/bin/* "$root/usr/bin/"
cp "$IMAGE_SCRIPTS_DIR"/kafka-config/* "$root/etc/kafka/"
# Hard links when possible (same filesystem), else copies.
cp -l "$libs"/*.jar "$root/opt/kafka/libs/" 2>/dev/null || cp "$libs"/*.jar "$root/opt/kafka/libs/"
# Modes as they must be in the image (COPY keeps them; no RUN layer needed).
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root"/usr/bin/* "$root"/etc/confluent/docker/{configure,ensure,launch}
# Content hash of the context + base image id: rebuild when either changes.
base_id=$(docker image inspect --format '{{.Id}}' "$base_image")
ctx_hash=$( (cd "$context" && find . -printf '%m %p\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum
              echo "$base_id") \
  | sha256sum | cut -c1-16)
step_end

# The stamp records "<image id> <context hash>" of the last build (a label
# would cost another image copy with vfs, see the Dockerfile).
stamp=$cache/kafka-$KAFKA_VERSION.stamp
have_id=$(docker image inspect --format '{{.Id}}' "$kafka_image" 2>/dev/null || true)
up_to_date=0
if [[ -n $have_id && -f $stamp && $(<"$stamp") == "$have_id $ctx_hash" ]]; then
  up_to_date=1
fi
if ((force || base_built || !up_to_date)); then
  [[ -n $have_id ]] && ((!force && !base_built)) && log "$kafka_image is out of date (build context changed)"
  old_images=("$(docker image inspect --format '{{.Id}}' "$kafka_image" 2>/dev/null || true)" "${old_images[@]}")
  step_start "docker build $kafka_image"
  # The classic builder takes FROM local/... straight from the local image
  # store and needs no registry and no buildx plugin.
  rm -f "$stamp"
  if ! DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build \
      --build-arg "BASE=$base_image" -t "$kafka_image" "$context" >"$cache/docker-build.log" 2>&1; then
    tail -n 30 "$cache/docker-build.log" >&2
    die "docker build failed (full log: $cache/docker-build.log)"
  fi
  step_end
  printf '%s %s\n' "$(docker image inspect --format '{{.Id}}' "$kafka_image")" "$ctx_hash" >"$stamp"
  log "$kafka_image: $(docker image inspect --format '{{.Size}}' "$kafka_image" | awk '{ printf "%d MB", $1 / 1e6 }')"
else
  log "$kafka_image is up to date (use --force to rebuild)"
fi
# The jars are in the image and in $libs: drop the context's links/copies.
rm -rf "$context/root/opt/kafka/libs"

new_ids=" $(docker image inspect --format '{{.Id}}' "$base_image" "$kafka_image" | tr '\n' ' ')"
for id in "${old_images[@]}"; do
  if [[ -n $id && $new_ids != *" $id "* ]] && docker image rm "$id" >/dev/null 2>&1; then
    log "removed the replaced image ${id#sha256:}"
  fi
done

if ((${#timings[@]})); then
  log "timings:"
  printf '    %s\n' "${timings[@]}" >&2
fi
printf '%s\n' "$kafka_image"
