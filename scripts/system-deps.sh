#!/usr/bin/env bash
# Installs the Debian packages Workhorse uses when they are missing.
# bubblewrap: the per-task sandbox; fuse3: the power-loss tests' lazy filesystem.
# Without root or apt, says what to install.
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "note: install ${need[*]} (e.g. sudo apt-get install ${need[*]}) for sandboxed code packages and the power-loss tests" >&2
fi
