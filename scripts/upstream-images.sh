#!/usr/bin/env bash
# Builds CHT's images from upstream's own code, for tests, benchmarks and offline users on
# machines that cannot pull from a registry:
#   REGISTRY/cht-couchdb:VERSION   Apache CouchDB 3.5.0 built from source (QuickJS, no Fauxton,
#                                  no docs) with cht-core's docker-entrypoint.sh,
#                                  10-docker-default.ini, vm.args and set-up-cluster.sh of
#                                  VERSION, under tini as couchdb (5984)
#   REGISTRY/cht-nginx:VERSION     Debian's nginx (trixie's 1.26: cht-core's nginx.conf needs
#                                  `http2 on`) with the stream module, the official image's
#                                  entrypoint and docker-entrypoint.d, and cht-core's nginx.conf,
#                                  templates, conf.d, error pages and ssl-install.sh
#   REGISTRY/cht-haproxy:VERSION   Debian's HAProxy 2.6 with cht-core's entrypoint.sh, configs,
#                                  Lua scripts and error files
#   REGISTRY/cht-haproxy-healthcheck:VERSION  cht-core's check.py with its pinned requirements
#   REGISTRY/cht-api:VERSION       a stand-in (scripts/upstream/api-standin.py) that uses
#                                  CouchDB for real, as the real API does: the API's npm tree
#                                  cannot be installed here
# Sentinel, Nouveau, the upgrade service and cht-crash come from scripts/standin-images.sh,
# run first for the same registry (their real builds need npm or Maven Central).
#
# Sources: ../shared/upstream next to the checkout (CHT_DEV_UPSTREAM names another folder):
# couchdb-3.5.0-with-deps.tar.xz, cht-core-VERSION-images.tar.xz, docker-nginx-entrypoint.tar.xz.
# Everything else comes from Debian's archive (debootstrap, apt) and PyPI, at build time only.
#
# Cache: base roots are imported as images tagged by the hash of their suite and package
# list; CouchDB's build is tagged by the hash of its tarball, flags and Erlang version; the
# healthcheck's wheels sit in .cache/upstream/pip (CHT_DEV_CACHE moves .cache). A warm
# machine rebuilds nothing but the small per-version layers (docker's build cache).
#
# Two adaptations to engines that cap a container's open files below what upstream asks
# (this machine's runc cannot raise the hard limit past 20000), each logged by the container:
# cht-couchdb sets upstream's own DEFAULT_ULIMIT=true when the hard limit is below 100000,
# and cht-haproxy passes `-n` to fit its maxconn within the limit.
#
# Usage: scripts/upstream-images.sh REGISTRY VERSION [VERSION...]   (as root: debootstrap)
set -euo pipefail
shopt -s inherit_errexit
registry=${1:?usage: upstream-images.sh REGISTRY VERSION [VERSION...]}
shift
[ "$#" -gt 0 ] || { echo "usage: upstream-images.sh REGISTRY VERSION [VERSION...]" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CHT_DEV_CACHE:-$root/.cache}/upstream"
upstream=${CHT_DEV_UPSTREAM:-}
if [ -z "$upstream" ]; then
  for candidate in "$root/../shared/upstream" /work/shared/upstream; do
    [ -f "$candidate/SOURCES" ] && { upstream=$candidate; break; }
  done
fi
die() { echo "upstream-images.sh: $*" >&2; exit 1; }
[ -n "$upstream" ] && [ -f "$upstream/SOURCES" ] ||
  die "no upstream sources: set CHT_DEV_UPSTREAM to the folder holding SOURCES and the tarballs"
for version in "$@"; do
  [ -f "$upstream/cht-core-$version-images.tar.xz" ] ||
    die "no cht-core-$version-images.tar.xz in $upstream (versions there: $(cd "$upstream" && ls cht-core-*-images.tar.xz | sed 's/cht-core-\(.*\)-images.tar.xz/\1/' | tr '\n' ' '))"
done
mkdir -p "$cache"
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, the CouchDB build's packages)"

bash "$root/scripts/standin-images.sh" "$registry" "$@"

need_apt=()
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
for pkg in erlang-nox erlang-dev erlang-reltool erlang-src libicu-dev build-essential rebar3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "upstream-images.sh: installing ${need_apt[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

build() { # docker build, quiet unless it fails
  local out
  out=$(docker build -q "$@" 2>&1) || { echo "$out" >&2; return 1; }
}
image_present() { docker image inspect "$1" >/dev/null 2>&1; }
hash_of() { sha256sum | cut -c1-16; }

# The Debian archive this machine's apt already uses (never the system's sources changed).
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null \
  | awk '$2 !~ /security|updates|backports/ { print $1; exit }')
[ -n "$mirror" ] || die "no Debian archive found in apt's sources to debootstrap from"

# base SUITE PACKAGES: prints the tag of a minbase root of SUITE with PACKAGES, made once.
base() {
  local suite=$1 packages=$2 tag rootfs
  tag="cht-dev-upstream-base:$suite-$(printf '%s %s 1' "$suite" "$packages" | hash_of)"
  if ! image_present "$tag"; then
    rootfs="$cache/root-$suite"
    rm -rf "$rootfs"
    echo "upstream-images.sh: debootstrap $suite (once per package list)" >&2
    if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" \
      > "$cache/debootstrap-$suite.log" 2>&1; then
      tail -5 "$cache/debootstrap-$suite.log" >&2
      die "debootstrap of $suite failed (log: $cache/debootstrap-$suite.log)"
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
      "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
    tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$tag" >/dev/null
    rm -rf "$rootfs"
  fi
  echo "$tag"
}

bookworm=$(base bookworm ca-certificates,curl,jq,tini,libicu72,libssl3,libncurses6,haproxy,python3,gettext-base,procps)
trixie=$(base trixie ca-certificates,curl,jq,nginx,libnginx-mod-stream,gettext-base,openssl,socat,findutils,procps)

# --- CouchDB 3.5.0, built on this machine with bookworm's Erlang ---------------------------
couch_tar="$upstream/couchdb-3.5.0-with-deps.tar.xz"
couch_flags="--skip-deps --disable-fauxton --disable-docs --js-engine=quickjs --disable-spidermonkey"
erlang=$(dpkg-query -W -f '${Version}' erlang-base)
couch_tag="cht-dev-upstream-couchdb:3.5.0-$( (sha256sum < "$couch_tar"; echo "$couch_flags $erlang $bookworm 1") | hash_of)"
if ! image_present "$couch_tag"; then
  work="$cache/couchdb-build"
  rm -rf "$work"
  mkdir -p "$work"
  echo "upstream-images.sh: building CouchDB 3.5.0 (configure, make release: a few minutes)" >&2
  tar -xJf "$couch_tar" -C "$work"
  # shellcheck disable=SC2086 # the flags are words
  if ! (cd "$work/couchdb-3.5.0" && ./configure $couch_flags --rebar3 /usr/bin/rebar3 --erlfmt /bin/true \
      && make release) > "$cache/couchdb-build.log" 2>&1; then
    tail -20 "$cache/couchdb-build.log" >&2
    die "the CouchDB build failed (log: $cache/couchdb-build.log)"
  fi
  ctx="$work/image"
  mkdir -p "$ctx"
  mv "$work/couchdb-3.5.0/rel/couchdb" "$ctx/couchdb"
  cat > "$ctx/Dockerfile" <<DOCKER
FROM $bookworm
RUN groupadd -g 5984 -r couchdb && useradd -u 5984 -r -g couchdb -d /opt/couchdb -s /bin/bash couchdb
COPY --chown=5984:5984 couchdb /opt/couchdb
RUN mkdir -p /opt/couchdb/data /opt/couchdb/etc/local.d /opt/couchdb/etc/default.d \
 && chown -R couchdb:couchdb /opt/couchdb
ENV PATH=/opt/couchdb/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DOCKER
  build -t "$couch_tag" "$ctx"
  rm -rf "$work"
fi

# --- the healthcheck's pinned requirements, fetched once ------------------------------------
pip_cache="$cache/pip"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
tar -xJf "$upstream/docker-nginx-entrypoint.tar.xz" -C "$ctx"

for version in "$@"; do
  src="$ctx/cht-$version"
  mkdir -p "$src"
  tar -xJf "$upstream/cht-core-$version-images.tar.xz" -C "$src"

  # cht-couchdb
  cat > "$src/couchdb/cht-dev-open-files.sh" <<'SH'
#!/bin/bash
# cht-dev's test image: upstream's entrypoint runs `ulimit -n 100000`, which fails where the
# engine caps a container's open files lower; upstream's remedy is DEFAULT_ULIMIT=true.
if [ -z "${DEFAULT_ULIMIT:-}" ] && [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 100000 ]; then
  echo "cht-dev test image: open files capped at $(ulimit -Hn) by the engine, so DEFAULT_ULIMIT=true" >&2
  export DEFAULT_ULIMIT=true
fi
exec /docker-entrypoint.sh "$@"
SH
  cat > "$src/couchdb/Dockerfile.cht-dev" <<DOCKER
FROM $couch_tag
COPY --chown=couchdb:couchdb 10-docker-default.ini /opt/couchdb/etc/default.d/
COPY --chown=couchdb:couchdb vm.args /opt/couchdb/etc/
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY cht-dev-open-files.sh /usr/local/bin/cht-dev-open-files.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh /usr/local/bin/cht-dev-open-files.sh \
 && ln -s usr/local/bin/docker-entrypoint.sh /docker-entrypoint.sh
COPY set-up-cluster.sh /opt/couchdb/etc/set-up-cluster.sh
ENTRYPOINT ["tini", "--", "/usr/local/bin/cht-dev-open-files.sh"]
VOLUME /opt/couchdb/data
EXPOSE 5984 4369 9100
CMD ["/opt/couchdb/bin/couchdb"]
DOCKER
  build -t "$registry/cht-couchdb:$version" -f "$src/couchdb/Dockerfile.cht-dev" "$src/couchdb"

  # cht-nginx
  cp -r "$ctx/entrypoint" "$src/nginx/entrypoint"
  cat > "$src/nginx/Dockerfile.cht-dev" <<DOCKER
FROM $trixie
RUN groupadd -g 101 -r nginx && useradd -u 101 -r -g nginx -d /nonexistent -s /bin/false nginx \
 && rm -rf /etc/nginx/sites-enabled /etc/nginx/conf.d/* \
 && mkdir -p /docker-entrypoint.d /etc/periodic/weekly /var/cache/nginx /usr/share/nginx/html \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
COPY entrypoint/docker-entrypoint.sh /docker-entrypoint.sh
COPY entrypoint/10-listen-on-ipv6-by-default.sh entrypoint/15-local-resolvers.envsh entrypoint/20-envsubst-on-templates.sh entrypoint/30-tune-worker-processes.sh /docker-entrypoint.d/
COPY ssl-install.sh /docker-entrypoint.d
RUN chmod 755 /docker-entrypoint.sh /docker-entrypoint.d/*
COPY templates /etc/nginx/templates
COPY nginx.conf /etc/nginx/nginx.conf
COPY mime.types /etc/nginx/mime.types
COPY conf.d/ /etc/nginx/conf.d/
COPY nginx_error_pages/ /usr/share/nginx/nginx_error_pages/
ENTRYPOINT ["/docker-entrypoint.sh"]
EXPOSE 80 443
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
DOCKER
  build -t "$registry/cht-nginx:$version" -f "$src/nginx/Dockerfile.cht-dev" "$src/nginx"

  # cht-haproxy: the official image's docker-entrypoint.sh runs `haproxy -W -db ARGS`
  cat > "$src/haproxy/docker-entrypoint.sh" <<'SH'
#!/bin/sh
# The official haproxy image's entrypoint: `haproxy -W -db` plus the arguments. cht-dev's test
# image adds `-n` when the engine caps open files below what cht-core's `maxconn 60000` needs.
set -e
if [ "${1#-}" != "$1" ]; then
  set -- haproxy "$@"
fi
if [ "$1" = haproxy ]; then
  shift
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt 120100 ]; then
    fit=$(( (hard - 100) / 2 ))
    echo "cht-dev test image: open files capped at $hard by the engine, so maxconn $fit" >&2
    set -- haproxy -W -db -n "$fit" "$@"
  else
    set -- haproxy -W -db "$@"
  fi
fi
exec "$@"
SH
  cat > "$src/haproxy/Dockerfile.cht-dev" <<DOCKER
FROM $bookworm
COPY entrypoint.sh /
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod +x /entrypoint.sh /usr/local/bin/docker-entrypoint.sh && mkdir -p /usr/local/etc/haproxy/errors \
 && ln -s /usr/sbin/haproxy /usr/local/sbin/haproxy
COPY default_frontend.cfg /usr/local/etc/haproxy/
COPY backend.cfg.template /usr/local/etc/haproxy/
COPY scripts /usr/local/etc/haproxy/
COPY errors/ /usr/local/etc/haproxy/errors/
STOPSIGNAL SIGUSR1
ENTRYPOINT ["/entrypoint.sh"]
DOCKER
  rm -f "$src/haproxy/errors/README.md" "$src/haproxy/errors/generate.sh" "$src/haproxy/errors/template.json"
  build -t "$registry/cht-haproxy:$version" -f "$src/haproxy/Dockerfile.cht-dev" "$src/haproxy"

  # cht-haproxy-healthcheck
  hc="$src/haproxy-healthcheck"
  req_hash=$(hash_of < "$hc/requirements/base-freeze.txt")
  if [ ! -f "$pip_cache/$req_hash/.done" ]; then
    rm -rf "$pip_cache/$req_hash"
    mkdir -p "$pip_cache/$req_hash"
    python3 -m pip install -q --disable-pip-version-check --no-compile --target "$pip_cache/$req_hash/site" \
      -r "$hc/requirements/base-freeze.txt" || die "pip could not fetch the healthcheck's pinned requirements"
    touch "$pip_cache/$req_hash/.done"
  fi
  cp -r "$pip_cache/$req_hash/site" "$hc/site"
  cat > "$hc/Dockerfile.cht-dev" <<DOCKER
FROM $bookworm
WORKDIR /app
COPY site /app/site
COPY *.py /app/
ENV PYTHONPATH=/app/site
USER nobody
CMD ["python3", "/app/check.py"]
DOCKER
  build -t "$registry/cht-haproxy-healthcheck:$version" -f "$hc/Dockerfile.cht-dev" "$hc"

  # cht-api stand-in
  mkdir -p "$src/api"
  cp "$root/scripts/upstream/api-standin.py" "$src/api/"
  printf 'FROM %s\nCOPY api-standin.py /app/api-standin.py\nENV CHT_VERSION=%s\nEXPOSE 5988\nCMD ["python3", "-u", "/app/api-standin.py"]\n' \
    "$bookworm" "$version" > "$src/api/Dockerfile"
  build -t "$registry/cht-api:$version" "$src/api"
done
echo "upstream-images.sh: $registry/cht-{couchdb,nginx,haproxy,haproxy-healthcheck,api}:{$(IFS=,; echo "$*")} built" >&2
