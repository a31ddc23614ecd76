#!/usr/bin/env bash
# Installs `wrk`, the load generator of benches/web.rs, when it is missing
# (`just bench` runs this first). Debian's package: `apt-get install -y wrk`,
# as root or through password-less sudo. Never fails: without wrk the web
# bench says so and skips its tables, and the other benches run as usual.
set -u

if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
say() { echo "ensure-wrk: $*" >&2; }
if ! command -v apt-get >/dev/null 2>&1; then
  say "wrk is not installed and there is no apt-get here; benches/web.rs will skip its tables"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  say "wrk is not installed and installing it needs root (apt-get install -y wrk); benches/web.rs will skip its tables"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
say "installing wrk (apt-get install -y wrk)"
# The package lists may be missing or stale on a fresh machine: update once
# if the first attempt fails.
if ! "${as_root[@]}" apt-get install -y wrk >/dev/null; then
  "${as_root[@]}" apt-get update >/dev/null && "${as_root[@]}" apt-get install -y wrk >/dev/null
fi
if command -v wrk >/dev/null 2>&1; then
  say "installed: $(wrk -v 2>&1 | head -n 1)"
else
  say "could not install wrk; benches/web.rs will skip its tables"
fi
exit 0
