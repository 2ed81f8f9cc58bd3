#!/usr/bin/env bash
# Second container engines for the tests, each in its own mount, network and pid namespace
# over a Debian root made by debootstrap: the host's engine, firewall and apt sources are
# never touched.
#   scripts/engines.sh up NAME             start it (once); last line: DOCKER_HOST=unix:///...
#   scripts/engines.sh exec NAME CMD...    run CMD with the host's files at the same paths and
#                                          NAME's network (its published ports on localhost),
#                                          with DOCKER_HOST set to NAME's socket
#   scripts/engines.sh down NAME           stop it and everything it runs
#   scripts/engines.sh host NAME           print its DOCKER_HOST (non-zero if it is not up)
# NAME: docker28 (sid's Docker Engine 28.x), podman (trixie's Podman 5.4, `podman system
# service` on its Docker-compatible API; runc, cgroupfs and file events, as this host's hybrid
# cgroup layout needs), or docker28-rootless / podman-rootless (the same engines, run by the
# tests' unprivileged user cht-dev-user, as whom the tests run the CLI against them). Needs
# root, debootstrap, unshare and nsenter.
#
# How: the root is made once with `debootstrap --variant=minbase` from the Debian archive
# apt already uses, and cached in .cache/engines/NAME (git ignores it; CHT_DEV_CACHE moves
# it). `unshare --mount --net --pid --fork` starts a shell that binds /proc, /sys, /dev and
# the host's /tmp into the root, `pivot_root`s into it (chroot would let `exec` land in the
# host's files), and runs the engine with its own data root, exec root, pid file and a
# socket under /tmp/cht-dev-engines/NAME/, which the host sees at the same path. Its
# bridge and NAT rules live in its own network namespace. Test homes live under /tmp, so
# the paths compose files bind-mount are the same for the host, cht-dev and the engine.
set -euo pipefail
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CHT_DEV_CACHE:-$root_dir/.cache}/engines"
state_base=/tmp/cht-dev-engines
say() { echo "engines.sh: $*" >&2; }
die() { say "$*"; exit 1; }
usage() { die "usage: engines.sh up|down|host NAME, or engines.sh exec NAME CMD..."; }

[ "$#" -ge 2 ] || usage
action=$1 name=$2
shift 2
case "$name" in
  docker28|docker28-rootless)
    suite=sid binary=/usr/bin/rootlesskit
    packages=docker.io,iptables,iproute2,ca-certificates,rootlesskit,uidmap,slirp4netns
    ;;
  podman|podman-rootless)
    suite=trixie binary=/usr/bin/newuidmap
    packages=podman,runc,conmon,netavark,aardvark-dns,nftables,iptables,iproute2,catatonit,ca-certificates,uidmap,passt
    ;;
  *) die "unknown engine $name: docker28, docker28-rootless, podman or podman-rootless" ;;
esac
# A rootless engine runs from its rootful twin's root, keeping its storage in its own home.
root_name=${name%-rootless}
# The rootless engine's user: the tests' unprivileged user, as whom the CLI runs against it.
rootless_user=cht-dev-user
state="$state_base/$name"
socket="$state/docker.sock"
host="unix://$socket"

# Whether the engine answers on its socket.
answers() {
  [ -S "$socket" ] && curl -sf --max-time 5 --unix-socket "$socket" http://engine/_ping >/dev/null 2>&1
}

# The process whose namespaces are the engine's (the unshare process), if it runs: a pid
# file left from before a reboot may name another process, which is never signalled.
engine_pid() {
  local pid
  pid=$(cat "$state/pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "^unshare .*--kill-child" || return 1
  echo "$pid"
}

make_root() {
  local rootfs=$1 mirror
  [ -x "$rootfs$binary" ] && return 0
  command -v debootstrap >/dev/null || {
    [ "$(id -u)" -eq 0 ] || die "needs debootstrap: sudo apt-get install debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  . /etc/os-release
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null \
    | awk -v c="${VERSION_CODENAME:-}" '$2 == c { print $1; exit }')
  [ -n "$mirror" ] || die "no Debian archive found in apt's sources to debootstrap from"
  say "making a $suite root for $name in $rootfs (once; cached)"
  rm -rf "$rootfs.new"
  mkdir -p "$(dirname "$rootfs")"
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs.new" "$mirror" \
    > "$cache/$name-debootstrap.log" 2>&1; then
    tail -5 "$cache/$name-debootstrap.log" >&2
    die "debootstrap of $suite failed (log: $cache/$name-debootstrap.log)"
  fi
  if [ "$root_name" = podman ]; then
    mkdir -p "$rootfs.new/etc/containers"
    printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
      > "$rootfs.new/etc/containers/containers.conf"
  fi
  rm -rf "$rootfs"
  mv "$rootfs.new" "$rootfs"
}

up() {
  [ "$(id -u)" -eq 0 ] || die "starting an engine needs root"
  for tool in unshare nsenter pivot_root curl; do
    command -v "$tool" >/dev/null || die "needs $tool"
  done
  if answers && engine_pid >/dev/null; then
    echo "DOCKER_HOST=$host"
    return 0
  fi
  down_quietly
  local rootfs="$cache/$root_name"
  make_root "$rootfs"
  mkdir -p "$state"
  chmod 755 "$state_base" "$state"
  local gid
  gid=$(getent group docker | cut -d: -f3) || gid=0
  local start
  case "$name" in
    docker28)
      start="dockerd --data-root /var/lib/docker --exec-root /run/docker-exec --pidfile /run/dockerd.pid -H '$host' --group $gid --storage-driver overlay2"
      ;;
    podman)
      start="mount -t tmpfs tmpfs /run && exec podman system service --time=0 '$host'"
      ;;
    *-rootless)
      # As the user, with subordinate ids for its user namespace, its runtime folder under
      # a fresh /run, and its storage in its own home. pasta (Podman's network) copies an
      # interface with a default route: one end of a veth pair, as this namespace has none
      # (this kernel has no dummy interfaces). Docker runs through dockerd-rootless.sh
      # (rootlesskit, slirp4netns), as its rootless setup tool installs it.
      local uid gid home
      uid=$(id -u "$rootless_user") || die "no user $rootless_user: useradd --create-home --groups docker $rootless_user"
      gid=$(id -g "$rootless_user")
      home="$state/home"
      mkdir -p "$home"
      chown "$uid:$gid" "$state" "$home"
      grep -q "^$rootless_user:" "$rootfs/etc/passwd" \
        || echo "$rootless_user:x:$uid:$gid::$home:/bin/sh" >> "$rootfs/etc/passwd"
      grep -q "^$rootless_user:" "$rootfs/etc/group" \
        || echo "$rootless_user:x:$gid:" >> "$rootfs/etc/group"
      echo "$rootless_user:200000:65536" > "$rootfs/etc/subuid"
      echo "$rootless_user:200000:65536" > "$rootfs/etc/subgid"
      start="mount -t tmpfs tmpfs /run && mkdir -p /run/user/$uid && chown $uid:$gid /run/user/$uid && chmod 700 /run/user/$uid \
        && ip link add eth0 type veth peer name eth1 && ip addr add 10.77.0.2/24 dev eth0 && ip link set eth1 up && ip link set eth0 up && ip route add default via 10.77.0.1 \
        && exec setpriv --reuid $uid --regid $gid --init-groups env HOME='$home' XDG_RUNTIME_DIR=/run/user/$uid"
      if [ "$root_name" = podman ]; then
        start="$start podman system service --time=0 '$host'"
      else
        start="$start PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/share/docker.io/contrib/dockerd-rootless.sh -H '$host'"
      fi
      ;;
  esac
  # A rootless engine's network (slirp4netns, pasta) opens /dev/net/tun as its user. Some
  # hosts keep theirs root-only (mode 0600): the namespace gets a node of its own, usable by
  # all as Debian makes it, on a tmpfs only this mount namespace sees; the host's stays as
  # it is.
  local private_tun=""
  case $name in
    *-rootless) private_tun="mount -t tmpfs -o mode=755 tmpfs '$rootfs/dev/net' && mknod -m 666 '$rootfs/dev/net/tun' c 10 200" ;;
  esac
  # The shell inside: PID 1 of the new pid namespace; it reaps, and its end ends all.
  local inside="
    set -e
    ip link set lo up
    mount --bind '$rootfs' '$rootfs'
    mount -t proc proc '$rootfs/proc'
    mount --rbind /sys '$rootfs/sys'
    mount --rbind /dev '$rootfs/dev'
    $private_tun
    mount --rbind /tmp '$rootfs/tmp'
    mkdir -p '$rootfs/.host'
    cd '$rootfs'
    pivot_root . .host
    umount -l /.host
    ( $start ) &
    trap 'kill -TERM \$! 2>/dev/null; wait' TERM INT
    wait
  "
  unshare --mount --net --pid --fork --kill-child=SIGTERM --propagation private \
    bash -c "$inside" > "$state/engine.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$state/pid"
  for _ in $(seq 1 120); do
    answers && break
    # (Not engine_pid: until the background shell has exec'd unshare, its command line is
    # this script's.)
    kill -0 "$pid" 2>/dev/null || { tail -20 "$state/engine.log" >&2; die "$name exited while starting"; }
    sleep 0.5
  done
  answers || { tail -20 "$state/engine.log" >&2; die "$name did not answer within 60 s"; }
  if [ "$name" = podman ] && [ "$gid" != 0 ]; then
    # As a rootful Podman's socket unit is set up for a group of users (SocketGroup=, as
    # podman-docker users do): the docker group may use it, as it may use dockerd's.
    chgrp "$gid" "$socket"
    chmod 660 "$socket"
  fi
  say "$name: $(curl -s --unix-socket "$socket" http://engine/version | grep -o '"Version":"[^"]*"' | head -1)"
  echo "DOCKER_HOST=$host"
}

down_quietly() {
  local pid
  pid=$(engine_pid) || { rm -f "$state/pid"; return 0; }
  # The namespace's PID 1 stops the engine and waits for it; unshare ends with it.
  local init
  init=$(pgrep -P "$pid" | head -1 || true)
  kill -TERM "${init:-$pid}" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  [ -z "$init" ] || kill -KILL "$init" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$state/pid" "$socket"
}

case "$action" in
  up) up ;;
  down) down_quietly ;;
  host)
    answers || die "$name is not up: scripts/engines.sh up $name"
    echo "DOCKER_HOST=$host"
    ;;
  exec)
    [ "$#" -ge 1 ] || usage
    answers || die "$name is not up: scripts/engines.sh up $name"
    pid=$(engine_pid) || die "$name is not up: scripts/engines.sh up $name"
    exec nsenter --net="/proc/$pid/ns/net" -- env DOCKER_HOST="${DOCKER_HOST-$host}" "$@"
    ;;
  *) usage ;;
esac
