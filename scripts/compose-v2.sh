#!/usr/bin/env bash
# Fetches Docker Compose v2 from one of Debian's newer suites, without touching the
# system's apt sources, and prints the path of its binary.
#   scripts/compose-v2.sh SUITE        e.g. trixie (2.26.x) or sid (2.40.x)
# The binary lands in target/compose-v2/SUITE/docker-compose; a second call reuses it.
# How: a private sources list naming the Debian archive this machine already uses (read
# from apt's own configuration), private Dir::State::Lists and Dir::Cache folders, then
# `apt-get download docker-compose` and `dpkg-deb -x`. The binary needs only libc.
set -euo pipefail
suite=${1:?usage: compose-v2.sh SUITE (trixie or sid)}
case "$suite" in
  *[!a-z0-9-]*) echo "compose-v2.sh: suite must be a Debian suite name such as trixie or sid" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/target/compose-v2/$suite"
bin="$dest/docker-compose"
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "compose-v2.sh: needs $tool (a Debian system)" >&2; exit 1; }
done

# The Debian archive this machine's apt already uses (not security or -updates).
. /etc/os-release
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null \
  | awk -v c="${VERSION_CODENAME:-}" '$2 == c { print $1; exit }')
if [ -z "$mirror" ]; then
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null \
    | awk '$2 !~ /security|updates|backports/ { print $1; exit }')
fi
[ -n "$mirror" ] || { echo "compose-v2.sh: no Debian archive found in apt's sources" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$keyring] $mirror $suite main" > "$work/sources.list"
apt_opts=(
  -o "Dir::Etc::sourcelist=$work/sources.list"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "APT::Sandbox::User=root"
  -qq
)
if ! out=$(apt-get "${apt_opts[@]}" update 2>&1); then
  echo "compose-v2.sh: apt-get update for $suite failed: $out" >&2
  exit 1
fi
if ! out=$(cd "$work/deb" && apt-get "${apt_opts[@]}" download docker-compose 2>&1); then
  echo "compose-v2.sh: apt-get download docker-compose ($suite) failed: $out" >&2
  exit 1
fi
dpkg-deb -x "$work"/deb/docker-compose_*.deb "$work/root"
plugin="$work/root/usr/libexec/docker/cli-plugins/docker-compose"
[ -x "$plugin" ] || { echo "compose-v2.sh: the $suite package has no compose plugin binary" >&2; exit 1; }
mkdir -p "$dest"
cp "$plugin" "$bin.new"
mv "$bin.new" "$bin"
"$bin" version >/dev/null
echo "$bin"
