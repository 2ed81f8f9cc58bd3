#!/usr/bin/env bash
# Installs what the tests need (once), then runs the whole test suite.
# Usage: bash scripts/test.sh [--stress] [extra cargo nextest arguments]
#   --stress  runs the suite on a busy machine: stress-ng's CPU hog (two workers) and an
#             I/O worker, and a loop that keeps creating and removing containers on the
#             host's engine, all beside the tests until they end
set -euo pipefail
cd "$(dirname "$0")/.."
stress=0
if [ "${1:-}" = --stress ]; then
  stress=1
  shift
fi

need_apt=()
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need_apt+=(busybox-static)
[ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need_apt+=(libnginx-mod-stream)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v certutil >/dev/null || need_apt+=(libnss3-tools)
command -v docker >/dev/null || need_apt+=(docker.io)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v zstd >/dev/null || need_apt+=(zstd)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
((stress == 0)) || command -v stress-ng >/dev/null || need_apt+=(stress-ng)
if ((${#need_apt[@]})); then
  # nginx-light is only a source of a binary for the stand-in image, and docker-registry a
  # program the tests start themselves; never start either here.
  export RUNLEVEL=1
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The engine tests need a running Docker engine: start one if we can.
if ! docker info >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "starting the Docker engine"
  service docker start >/dev/null 2>&1 || (nohup dockerd >/tmp/dockerd.log 2>&1 &)
  for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi

# The non-root tests run cht-dev as an unprivileged member of the docker group, as CHT
# developers run it.
if [ "$(id -u)" -eq 0 ]; then
  getent group docker >/dev/null || groupadd --system docker
  id cht-dev-user >/dev/null 2>&1 || useradd --create-home --groups docker cht-dev-user
  id -nG cht-dev-user | grep -qw docker || usermod -aG docker cht-dev-user
fi

# Docker Compose v2, as users and the CHT upgrade service run it: two versions that compute
# different config hashes (trixie's 2.26.x inside the stand-in upgrade service, sid's 2.40.x
# as a newer host compose), fetched from Debian without touching the system's apt sources.
for suite in trixie sid; do
  bash scripts/compose-v2.sh "$suite" >/dev/null
done

# Second engines, each in its own namespaces over a cached debootstrap root (the host's
# engine and firewall untouched): the core set of engine tests runs against each. Stopped
# when the tests end.
if [ "$(id -u)" -eq 0 ]; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  engines=(docker28 docker28-rootless podman podman-rootless)
  trap 'for e in "${engines[@]}"; do bash scripts/engines.sh down "$e"; done' EXIT
  for e in "${engines[@]}"; do
    bash scripts/engines.sh up "$e" >/dev/null
  done
else
  echo "note: not root, so the second engines are not started; their tests fail, saying so" >&2
fi

# The test images: the stand-ins, and the images built from upstream's code in
# ../shared/upstream (scripts/upstream-images.sh: CouchDB from source, cht-core's nginx,
# HAProxy and healthcheck), once per script change (the tests check the same stamps).
if [ "$(id -u)" -eq 0 ]; then
  start=$SECONDS
  bash scripts/upstream-images.sh cht-dev-upstream.local 5.2.0 4.22.0
  mkdir -p target
  # The stamp the tests compare (tests/it/common/engine.rs upstream_images): these scripts' hash.
  cat scripts/upstream-images.sh scripts/upstream/api-standin.py scripts/standin-images.sh \
    | sha256sum | cut -d' ' -f1 > target/upstream-images.stamp
  echo "test images ready in $((SECONDS - start)) s"
else
  echo "note: not root, so the upstream-built images are not built here; the tests that need them build them or fail, saying so" >&2
fi

if [ ! -x .venv/bin/check-jsonschema ] || [ ! -x .venv/bin/kubernetes-validate ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check check-jsonschema kubernetes-validate
fi
export PATH="$PWD/.venv/bin:$PATH"

if ((stress)); then
  # Built first, so the hog slows the tests, not the compiler.
  cargo nextest run --workspace --features fault-hooks --no-run >/dev/null 2>&1 || true
  # The churn's image, made here so the loop churns from the first test on: static
  # busybox as /bin/true, nothing else.
  churn_ctx=$(mktemp -d)
  cp /bin/busybox "$churn_ctx/true"
  printf 'FROM scratch\nCOPY true /bin/true\nENTRYPOINT ["/bin/true"]\n' > "$churn_ctx/Dockerfile"
  docker build -q -t cht-dev-stress-churn:1 "$churn_ctx" >/dev/null
  rm -rf "$churn_ctx"
  stress-ng --cpu 2 --io 1 --timeout 0 --quiet &
  hog=$!
  (
    while :; do
      docker run --rm --label cht-dev-stress=1 cht-dev-stress-churn:1 >/dev/null 2>&1 || sleep 1
    done
  ) &
  churn=$!
  echo "stress: stress-ng --cpu 2 --io 1 (pid $hog) and a container churn loop (pid $churn) run beside the tests"
  trap 'kill "$hog" "$churn" 2>/dev/null; for e in "${engines[@]:-}"; do [ -n "$e" ] && bash scripts/engines.sh down "$e"; done' EXIT
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --features fault-hooks --no-fail-fast "$@"
else
  cargo test --workspace --features fault-hooks --no-fail-fast "$@"
fi
