# shellcheck shell=bash
# Debian 12 packages needed to build, test, benchmark, package and run the demo.
# This is the one list: scripts/demo, scripts/test, scripts/bench, scripts/fuzz and scripts/package source this
# file and call weir_ensure_deps before they configure.
#
# Set WEIR_SKIP_DEPS=1 to skip the check (e.g. on a system that is not Debian
# and provides the libraries another way).

WEIR_DEBIAN_PACKAGES=(
  cmake
  ninja-build
  g++
  libtbb-dev
  libconcurrentqueue-dev
  prometheus-cpp-dev
  libspdlog-dev
  libfmt-dev
  doctest-dev
  libsimdjson-dev
  nlohmann-json3-dev
  libcli11-dev
  libcivetweb-dev
  libcurl4-openssl-dev
  prometheus # promtool, used by the tests to lint the /metrics exposition
  chromium   # the browser tests of the live page and the benchmark report (tests/browser)
  nodejs     # runs the browser tests (playwright-core, installed by npm ci from tests/browser)
  npm
  # Fuzzing (scripts/fuzz and the fuzz_* tests): clang++-14 with libFuzzer and the sanitizer
  # runtimes; llvm-symbolizer names the functions in a crash's stack.
  clang-14
  libfuzzer-14-dev
  libclang-rt-14-dev
  llvm-14
  pkgconf    # pkg-config, used by the tests to check weir.pc
)

# Optional, used when present and never installed here: clang-format
# (scripts/format and the format check in scripts/test).

# Prints the packages among "$@" that are not installed, one per line. A package that an installed
# one provides counts as installed (e.g. npm, which a nodejs from another source may provide).
weir_missing_packages() {
  local pkg provided
  provided=$(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null | sed -n 's/^install ok installed|//p' |
    tr ',' '\n' | sed 's/([^)]*)//; s/^ *//; s/ *$//' | grep -v '^$' || true)
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' &&
      ! grep -qxF "$pkg" <<<"$provided"; then
      printf '%s\n' "$pkg"
    fi
  done
}

# Makes sure every package in WEIR_DEBIAN_PACKAGES is installed. Silent when
# nothing is missing. As root, installs the missing ones; otherwise prints the
# command to run and exits the calling script with status 1.
weir_ensure_deps() {
  if [[ ${WEIR_SKIP_DEPS:-0} == 1 ]]; then
    return 0
  fi
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "warning: dpkg-query not found (not Debian?); not checking packages:" >&2
    echo "  ${WEIR_DEBIAN_PACKAGES[*]}" >&2
    return 0
  fi

  local missing=()
  mapfile -t missing < <(weir_missing_packages "${WEIR_DEBIAN_PACKAGES[@]}")
  if ((${#missing[@]} == 0)); then
    return 0
  fi

  if [[ $(id -u) -eq 0 ]]; then
    echo "==> Installing missing Debian packages: ${missing[*]}" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  else
    {
      echo "error: missing Debian packages: ${missing[*]}"
      echo "Install them as root, then run this again:"
      echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    } >&2
    exit 1
  fi
}
