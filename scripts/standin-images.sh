#!/usr/bin/env bash
# Builds small local stand-ins for the CHT images, for tests and benchmarks on machines
# that cannot pull from a registry:
#   <registry>/cht-{couchdb,couchdb-nouveau,haproxy,haproxy-healthcheck,api,sentinel}:<version>
#     FROM scratch + Debian's static busybox (its applets linked in /bin), serving HTTP on
#     the service's port. The CouchDB one behaves as the real image's entrypoint does: as
#     root it chowns /opt/couchdb/data to couchdb (5984:5984), folders 0755 and files 0644,
#     then runs as couchdb and appends a line to /opt/couchdb/data/standin-marker
#   <registry>/cht-nginx:<version>
#     Debian's nginx-light binary and its shared libraries, configured like cht-nginx:
#     :80 answers 301 to https, :443 serves /etc/nginx/private/{cert,key}.pem and
#     proxies to api:5988 through Docker's resolver 127.0.0.11. Like the real image
#     (nginx on Alpine) it has a busybox shell and awk, and the stream module (Debian's
#     is a dynamic module, loaded by /etc/nginx/modules-enabled/*.conf)
#   <registry>/cht-upgrade-service:latest
#     busybox on :5008 plus a real Docker Compose v2 (Debian trixie's 2.26.x unless
#     CHT_DEV_STANDIN_COMPOSE names another binary) behind a `docker compose` shim. At boot
#     it does what medic/cht-upgrade-service's src/containers.js startUp does: every file in
#     /docker-compose that `docker compose -p $CHT_COMPOSE_PROJECT_NAME -f FILE config`
#     accepts, in name order, then `docker compose -p ... -f ... up -d --remove-orphans`,
#     logging "startup: begin", compose's own output, and "startup: done (exit N)".
#     `docker exec CONTAINER cht-startup` runs the same step again, as an in-app upgrade does.
#   <registry>/cht-upgrade-service:no-compose  (the same without docker or compose)
#   <registry>/cht-crash:latest  (exits at once with an error, for fault tests)
# Usage: scripts/standin-images.sh REGISTRY VERSION [VERSION...]
set -euo pipefail
registry=${1:?usage: standin-images.sh REGISTRY VERSION [VERSION...]}
shift
[ "$#" -gt 0 ] || { echo "usage: standin-images.sh REGISTRY VERSION [VERSION...]" >&2; exit 2; }

busybox=/bin/busybox
nginx=/usr/sbin/nginx
stream=/usr/lib/nginx/modules/ngx_stream_module.so
for need in "$busybox" "$nginx" "$stream"; do
  [ -e "$need" ] || { echo "missing $need: apt-get install busybox-static nginx-light libnginx-mod-stream" >&2; exit 1; }
done
if ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is not static: apt-get install busybox-static" >&2
  exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

# docker build, quiet unless it fails (the legacy builder's deprecation notice is noise here).
build() {
  local out
  if ! out=$(docker build -q "$@" 2>&1); then
    echo "$out" >&2
    return 1
  fi
}

# --- busybox base ---------------------------------------------------------
mkdir -p "$ctx/base/www/api" "$ctx/base/etc"
cp "$busybox" "$ctx/base/busybox"
printf 'root:x:0:0:root:/root:/bin/sh\ncouchdb:x:5984:5984:CouchDB:/opt/couchdb:/bin/sh\n' > "$ctx/base/etc/passwd"
printf 'root:x:0:\ncouchdb:x:5984:\n' > "$ctx/base/etc/group"
cat > "$ctx/base/www/index.html" <<'HTML'
<!doctype html><html><head><title>CHT API stand-in</title></head>
<body><h1>CHT API stand-in</h1><p>served by cht-dev's test images</p></body></html>
HTML
cat > "$ctx/base/Dockerfile" <<'DOCKER'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
COPY etc /etc
ENV PATH=/bin
DOCKER
build -t cht-dev-standin-base:2 "$ctx/base"

# service name -> port
declare -A ports=(
  [couchdb]=5984 [couchdb-nouveau]=5987 [haproxy]=5984 [haproxy-healthcheck]=5555
  [api]=5988 [sentinel]=5003
)

build_service() { # tag port
  # Like the real services, stop promptly on SIGTERM (a shell as PID 1 would ignore it).
  local tag=$1 port=$2 script
  script="trap 'exit 0' TERM; httpd -f -v -p $port -h /www & wait"
  printf 'FROM cht-dev-standin-base:2\nENTRYPOINT ["/bin/sh", "-c", "%s"]\n' "$script" | build -t "$tag" -
}

# CouchDB: the real image's entrypoint, as far as data ownership goes (docker-entrypoint.sh
# in apache/couchdb-docker): chown the data to couchdb, folders 0755, files 0644, then
# drop to couchdb. What it writes from then on is 5984's.
#
# For snapshot tests: when the data folder holds `standin-writer`, a writer appends to
# `.couch` files all the time and now and then replaces one by rename, as compaction does;
# on SIGTERM it stops, and the data as it is then is copied into `.at-stop` inside the data
# folder, so a test can compare what a snapshot holds with the data at the moment of the stop.
couchdb_entrypoint='d=/opt/couchdb/data
writer=
stop() {
  if [ -n "$writer" ]; then
    kill $writer; wait $writer
    rm -rf /opt/couchdb/at-stop; mkdir /opt/couchdb/at-stop
    for f in $d/* $d/.[!.]*; do
      [ -e "$f" ] && [ "$f" != "$d/.at-stop" ] && cp -a "$f" /opt/couchdb/at-stop/
    done
    rm -rf $d/.at-stop; cp -a /opt/couchdb/at-stop $d/.at-stop
  fi
  exit 0
}
trap stop TERM
mkdir -p $d
chown -R couchdb:couchdb $d
find $d -type d ! -perm 0755 -exec chmod 0755 {} +
find $d -type f ! -perm 0644 -exec chmod 0644 {} +
su -s /bin/sh couchdb -c "echo started >> $d/standin-marker"
su -s /bin/sh couchdb -c "exec httpd -f -v -p 5984 -h /www" &
if [ -f $d/standin-writer ]; then
  su -s /bin/sh couchdb -c "mkdir -p $d/shards; i=0; while :; do i=\$((i+1));
    echo doc-\$i-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa >> $d/shards/a.couch;
    echo doc-\$i >> $d/b.couch;
    if [ \$((i % 50)) -eq 0 ]; then echo compacted-\$i > $d/c.couch.compact; mv $d/c.couch.compact $d/c.couch; fi;
    usleep 1000; done" &
  writer=$!
fi
wait'
mkdir -p "$ctx/couchdb"
printf '%s\n' "$couchdb_entrypoint" > "$ctx/couchdb/entrypoint.sh"
printf 'FROM cht-dev-standin-base:2\nCOPY entrypoint.sh /entrypoint.sh\nENTRYPOINT ["/bin/sh", "/entrypoint.sh"]\n' \
  > "$ctx/couchdb/Dockerfile"

# --- nginx ------------------------------------------------------------------
root="$ctx/nginx/rootfs"
mkdir -p "$root/usr/sbin" "$root/etc/nginx/private" "$root/var/log/nginx" "$root/var/lib/nginx" "$root/run" "$root/tmp" \
  "$root/bin" "$root/usr/lib/nginx/modules" "$root/etc/nginx/modules-enabled"
chmod 1777 "$root/tmp"
cp "$nginx" "$root/usr/sbin/nginx"
cp "$busybox" "$root/bin/busybox"
cp "$stream" "$root/usr/lib/nginx/modules/"
echo "load_module $stream;" > "$root/etc/nginx/modules-enabled/50-mod-stream.conf"
for lib in $(ldd "$nginx" "$stream" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo 'root:x:0:0:root:/root:/bin/false' > "$root/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >> "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
cat > "$root/etc/nginx/nginx.conf" <<'CONF'
user nobody nogroup;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  resolver 127.0.0.11 valid=5s ipv6=off;
  server {
    listen 80;
    return 301 https://$host$request_uri;
  }
  server {
    listen 443 ssl;
    ssl_certificate /etc/nginx/private/cert.pem;
    ssl_certificate_key /etc/nginx/private/key.pem;
    location / {
      set $api http://api:5988;
      proxy_pass $api;
      proxy_set_header Host $host;
    }
  }
}
CONF
cat > "$ctx/nginx/Dockerfile" <<'DOCKER'
FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/sbin:/bin
VOLUME /etc/nginx/private
ENTRYPOINT ["/usr/sbin/nginx", "-g", "daemon off;"]
DOCKER
build -t cht-dev-standin-nginx:1 "$ctx/nginx"

for version in "$@"; do
  for service in "${!ports[@]}"; do
    if [ "$service" = couchdb ]; then
      build -t "$registry/cht-couchdb:$version" "$ctx/couchdb"
    else
      build_service "$registry/cht-$service:$version" "${ports[$service]}"
    fi
  done
  docker tag cht-dev-standin-nginx:1 "$registry/cht-nginx:$version"
done
# --- upgrade service ----------------------------------------------------------
compose=${CHT_DEV_STANDIN_COMPOSE:-}
if [ -z "$compose" ]; then
  compose=$(bash "$(dirname "$0")/compose-v2.sh" trixie)
fi
[ -x "$compose" ] || { echo "compose binary $compose is not executable" >&2; exit 1; }
up="$ctx/upgrade/rootfs"
mkdir -p "$up/bin" "$up/usr/local/bin" "$up/usr/libexec/docker/cli-plugins" "$up/www" "$up/tmp" "$up/etc"
chmod 1777 "$up/tmp"
cp "$busybox" "$up/bin/busybox"
cp "$compose" "$up/usr/libexec/docker/cli-plugins/docker-compose"
for lib in $(ldd "$compose" 2>/dev/null | grep -o '/[^ ]*'); do
  mkdir -p "$up$(dirname "$lib")"
  cp -L "$lib" "$up$lib"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$up/etc/passwd"
echo 'root:x:0:' > "$up/etc/group"
echo '{"ok":true}' > "$up/www/index.html"
cat > "$up/usr/local/bin/docker" <<'SH'
#!/bin/sh
# The stand-in's `docker` CLI: only `docker compose ...`, run by the compose binary itself.
if [ "$1" = compose ]; then shift; fi
exec /usr/libexec/docker/cli-plugins/docker-compose "$@"
SH
cat > "$up/usr/local/bin/cht-startup" <<'SH'
#!/bin/sh
# What medic/cht-upgrade-service does at boot and after an upgrade (src/containers.js startUp).
echo "startup: begin"
project="$CHT_COMPOSE_PROJECT_NAME"
set --
for f in $(LC_ALL=C ls -A /docker-compose); do
  [ -f "/docker-compose/$f" ] || continue
  if docker compose -p "$project" -f "/docker-compose/$f" config >/dev/null 2>&1; then
    set -- "$@" -f "/docker-compose/$f"
  fi
done
if [ "$#" -eq 0 ]; then
  echo "startup: done (no valid compose file)"
  exit 0
fi
echo "Running cmd: docker compose -p $project $* up -d --remove-orphans"
docker compose -p "$project" "$@" up -d --remove-orphans 2>&1
echo "startup: done (exit $?)"
SH
cat > "$up/usr/local/bin/cht-upgrade-standin" <<'SH'
#!/bin/sh
# Serves :5008 and runs the boot-time compose step; stops promptly on SIGTERM.
trap 'exit 0' TERM
httpd -f -v -p 5008 -h /www &
cht-startup &
wait
SH
chmod 755 "$up/usr/local/bin/"*
cat > "$ctx/upgrade/Dockerfile" <<'DOCKER'
FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/local/bin:/usr/bin:/bin
ENTRYPOINT ["/bin/sh", "/usr/local/bin/cht-upgrade-standin"]
DOCKER
build -t "$registry/cht-upgrade-service:latest" "$ctx/upgrade"
# An upgrade service without compose, for the fallback when its hashes cannot be learned.
printf 'FROM %s\nRUN ["/bin/busybox", "rm", "/usr/local/bin/docker", "/usr/libexec/docker/cli-plugins/docker-compose"]\nENTRYPOINT ["/bin/sh", "-c", "trap \x27exit 0\x27 TERM; httpd -f -v -p 5008 -h /www & wait"]\n' \
  "$registry/cht-upgrade-service:latest" | build -t "$registry/cht-upgrade-service:no-compose" -
printf 'FROM cht-dev-standin-base:2\nENTRYPOINT ["/bin/busybox", "sh", "-c", "echo stand-in crashing on purpose >&2; exit 3"]\n' \
  | build -t "$registry/cht-crash:latest" -
echo "built stand-in images for $registry: $*"
