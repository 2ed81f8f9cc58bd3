#!/usr/bin/env bash
# Type-checks the whole crate (`cargo check --all-targets`) for macOS, on this Linux machine,
# with no Apple SDK: it proves cht-dev compiles for aarch64-apple-darwin and
# x86_64-apple-darwin, not that it runs there. Exits non-zero on the first error.
#   bash scripts/check-macos.sh [TARGET ...]     (default: both Apple targets)
#
# How, each step cached under .cache/macos (git ignores it; CHT_DEV_CACHE moves it):
# - Toolchain: Debian's rustc-web, cargo-web and rust-web-src come from one source package in
#   the security suite, so the compiler and std's source match. They are fetched with a
#   private apt list (the system's apt sources are never changed), unpacked with dpkg-deb,
#   and run with LD_LIBRARY_PATH.
# - std: RUSTC_BOOTSTRAP=1 lets that cargo build std for the target (-Zbuild-std); the
#   project's crates and std's are vendored once per Cargo.lock, then every check is offline.
# - ring's C code: Debian's clang-14, freestanding, with a stand-in TargetConditionals.h.
#   zstd's C library is not compiled: zstd-sys is pointed at Debian's libzstd through
#   pkg-config (ZSTD_SYS_USE_PKG_CONFIG), which only names it. Nothing is linked.
# - cargo's fingerprints ignore the project's folder, so the crate is cleaned before each
#   check: a warm cache never reports OK for code it did not check.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CHT_DEV_CACHE:-$root/.cache}/macos"
targets=("$@")
((${#targets[@]})) || targets=(aarch64-apple-darwin x86_64-apple-darwin)
say() { echo "check-macos: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb dpkg-query; do
  command -v "$tool" >/dev/null || die "needs $tool (a Debian system)"
done
if ! command -v clang-14 >/dev/null || ! command -v pkg-config >/dev/null \
  || ! pkg-config --exists libzstd; then
  [ "$(id -u)" -eq 0 ] || die "needs clang-14 for ring's C code and libzstd's pkg-config file: sudo apt-get install clang-14 pkg-config libzstd-dev"
  say "installing clang-14, pkg-config and libzstd-dev"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 pkg-config libzstd-dev >/dev/null
fi

# --- Toolchain: rustc-web, cargo-web and rust-web-src from <codename>-security -------------
toolchain="$cache/toolchain"
libs="$toolchain/usr/lib/x86_64-linux-gnu"
cargo_bin="$toolchain/usr/bin/cargo"
rustc_bin="$toolchain/usr/bin/rustc"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! "$cargo_bin" -V >/dev/null 2>&1 || ! "$rustc_bin" -V >/dev/null 2>&1; then
  . /etc/os-release
  codename=${VERSION_CODENAME:?/etc/os-release names no VERSION_CODENAME}
  uri_of() {
    apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null \
      | awk -v r="$1" '$2 == r { print $1; exit }'
  }
  security=$(uri_of "$codename-security")
  main=$(uri_of "$codename")
  [ -n "$security" ] && [ -n "$main" ] \
    || die "apt's sources name no $codename and $codename-security archives to fetch rustc-web from"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'deb [signed-by=%s] %s %s main\n' \
    "$keyring" "$security" "$codename-security" "$keyring" "$main" "$codename" > "$work/sources.list"
  apt_opts=(
    -o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "APT::Sandbox::User=root" -qq
  )
  say "fetching rustc-web, cargo-web and rust-web-src ($codename-security)"
  out=$(apt-get "${apt_opts[@]}" update 2>&1) || die "apt-get update failed: $out"
  # Every package they need that this system lacks (shared libraries: LLVM, libgit2, ...).
  wanted=(rustc-web cargo-web rust-web-src)
  mapfile -t deps < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends \
    --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "${wanted[@]}" \
    | grep -v '^ ' | grep -v '^<' | sort -u)
  fetch=()
  for pkg in "${deps[@]}"; do
    case " ${wanted[*]} " in *" $pkg "*) fetch+=("$pkg"); continue ;; esac
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || fetch+=("$pkg")
  done
  out=$(cd "$work/deb" && apt-get "${apt_opts[@]}" download "${fetch[@]}" 2>&1) \
    || die "apt-get download ${fetch[*]} failed: $out"
  rm -rf "$toolchain.new"
  mkdir -p "$toolchain.new"
  for deb in "$work"/deb/*.deb; do dpkg-deb -x "$deb" "$toolchain.new"; done
  rm -rf "$toolchain"
  mv "$toolchain.new" "$toolchain"
  missing=$(ldd "$cargo_bin" "$rustc_bin" "$libs"/librustc_driver-*.so | grep 'not found' || true)
  [ -z "$missing" ] || die "the unpacked toolchain lacks shared libraries: $missing"
fi
"$rustc_bin" -V >/dev/null || die "the toolchain in $toolchain does not run"
sysroot=$("$rustc_bin" --print sysroot)
library="$sysroot/lib/rustlib/src/rust/library"
[ -f "$library/Cargo.lock" ] || die "rust-web-src is missing from $toolchain"

# --- Vendored crates: the project's and std's, once per lock file and toolchain -----------
stamp=$( (cat "$root/Cargo.lock" "$library/Cargo.lock"; "$rustc_bin" -V) | sha256sum | cut -c1-16)
vendor="$cache/vendor"
if [ "$(cat "$vendor/.stamp" 2>/dev/null)" != "$stamp" ]; then
  say "vendoring the project's and std's crates"
  rm -rf "$vendor.new"
  out=$(cd "$root" && RUSTC="$rustc_bin" "$cargo_bin" vendor --locked --versioned-dirs \
    --sync "$library/Cargo.toml" "$vendor.new" 2>&1 >/dev/null) || die "cargo vendor failed: $out"
  echo "$stamp" > "$vendor.new/.stamp"
  rm -rf "$vendor"
  mv "$vendor.new" "$vendor"
fi

# --- A stand-in for the SDK header ring's C code includes ------------------------------
include="$cache/include"
mkdir -p "$include"
cat > "$include/TargetConditionals.h" <<'EOF'
/* Stand-in for the Apple SDK's header: macOS, not iOS, tvOS, watchOS or a simulator. */
#pragma once
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
EOF

# --- The checks ---------------------------------------------------------------------------
export RUSTC="$rustc_bin" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$cache/target" CARGO_TERM_COLOR=never
export ZSTD_SYS_USE_PKG_CONFIG=1 PKG_CONFIG_ALLOW_CROSS=1
offline=(
  --offline --locked
  --config 'source.crates-io.replace-with="vendored-sources"'
  --config "source.vendored-sources.directory=\"$vendor\""
)
cd "$root"
for target in "${targets[@]}"; do
  case "$target" in
    *-apple-darwin) ;;
    *) die "$target is not an Apple target (aarch64-apple-darwin or x86_64-apple-darwin)" ;;
  esac
  var=${target//-/_}
  export "CC_$var=clang-14"
  export "CFLAGS_$var=-ffreestanding -nostdlibinc -isystem $include -DRING_CORE_NOSTDLIBINC=1"
  "$cargo_bin" clean -p cht-dev --target "$target" "${offline[@]}" -q
  say "cargo check --all-targets --target $target"
  if ! "$cargo_bin" check --all-targets --target "$target" -Zbuild-std=std,panic_abort \
    "${offline[@]}" -q; then
    die "$target: the crate does not compile for macOS (see the errors above)"
  fi
  say "$target: the crate type-checks"
done
