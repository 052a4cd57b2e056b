# scripts/setup.sh — shared setup for run-tests and run-demo. Sourced (bash), not run.
#
# Defines:
#   REP_ROOT             the repository root (absolute)
#   rep_deps             install the Debian packages the build and tests need (root), or say how
#   rep_bootstrap        autoreconf -fi when configure or Makefile.in is missing or older
#                        than configure.ac or Makefile.am
#   rep_build DIR ARGS   configure REP_ROOT/DIR out of tree with ARGS (again when ARGS change),
#                        then make
# Environment: REP_JOBS (default 2) is passed to make -j.

REP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REP_JOBS=${REP_JOBS:-2}
REP_PACKAGES=(build-essential autoconf automake libtool pkg-config
              liblmdb-dev libsodium-dev libzmq3-dev libmsgpack-dev libzstd-dev libjansson-dev check
              python3 iproute2   # iproute2: tests/netns.sh makes network namespaces with ip
              tcpdump   # tests/relay.sh: the relay's traffic holds no plaintext
              libmicrohttpd-dev curl  # tests/connector.sh: the HTTP endpoint, the example connector
              chromium nodejs  # tests/browser.sh: the front desk's page in headless chromium (npm
                               # comes with nodejs from nodesource; Debian's nodejs needs npm too)
              clang libclang-rt-14-dev) # clang's libFuzzer (libclang_rt.fuzzer): the fuzz pass

rep_say() { printf '\n==> %s\n' "$*"; }

rep_deps() {
    local p missing=()
    if ! command -v dpkg-query >/dev/null; then
        echo "note: not a Debian system; make sure these are installed: ${REP_PACKAGES[*]}"
        return 0
    fi
    for p in "${REP_PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]}" >&2
        echo "install them with:" >&2
        echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    rep_say "installing ${missing[*]}"
    apt-get update -q || exit 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || exit 1
}

rep_bootstrap() {
    local out
    if [ -x "$REP_ROOT/configure" ] && [ -f "$REP_ROOT/Makefile.in" ] &&
       [ "$REP_ROOT/configure" -nt "$REP_ROOT/configure.ac" ] &&
       [ "$REP_ROOT/Makefile.in" -nt "$REP_ROOT/Makefile.am" ]; then
        return 0
    fi
    rep_say "autoreconf -fi"
    mkdir -p "$REP_ROOT/m4"
    out=$(cd "$REP_ROOT" && autoreconf -fi 2>&1) || { echo "$out" >&2; return 1; }
}

rep_build() {
    local dir=$1
    shift
    mkdir -p "$REP_ROOT/$dir" || return 1
    # .configure-args remembers the arguments of the last configure run in DIR.
    if [ ! -f "$REP_ROOT/$dir/Makefile" ] ||
       [ "$(cat "$REP_ROOT/$dir/.configure-args" 2>/dev/null)" != "$*" ]; then
        rep_say "configure $dir: $*"
        (cd "$REP_ROOT/$dir" && ../configure "$@" >configure.out 2>&1) || {
            tail -n 40 "$REP_ROOT/$dir/configure.out" >&2
            echo "configure failed; full output in $dir/configure.out and $dir/config.log" >&2
            return 1
        }
        echo "$*" >"$REP_ROOT/$dir/.configure-args"
    fi
    rep_say "make -C $dir"
    make -C "$REP_ROOT/$dir" -s -j"$REP_JOBS" V=0
}
