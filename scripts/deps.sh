#!/usr/bin/env bash
# Installs the Debian packages named in its arguments that are missing.
# As root it uses apt-get; otherwise it only says what is missing, since a
# user without root cannot run the veth, DPDK or lesson parts anyway.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root; missing Debian packages: ${missing[*]} (the features that need them will be skipped)" >&2
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
