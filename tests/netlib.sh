# tests/netlib.sh — shared by the scripts that run real node processes (net.sh, relay.sh):
# a scratch directory, ok / not ok bookkeeping, node start and stop, and bounded waits.
# Source it after setting REPLICA; it sets T (removed at exit), PID and PORT (by node name).
# Needs python3 (free ports, JSON): a script exits 77 (skip) without it.
command -v python3 >/dev/null 2>&1 || { echo "python3 not found: skipped"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/net.XXXXXX")
passed=0
failed=0
declare -A PID PORT

cleanup() {
    for n in "${!PID[@]}"; do
        [ -n "${PID[$n]}" ] && kill -9 "${PID[$n]}" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap "exit 1" INT TERM

ok() { passed=$((passed + 1)); echo "ok - $1"; }
notok() {
    failed=$((failed + 1))
    echo "not ok - $1"
    for f in "$T"/*.log; do [ -s "$f" ] && { echo "# --- $f"; tail -n 15 "$f" | sed 's/^/# /'; }; done
}
check() { local what=$1; shift; if "$@"; then ok "$what"; else notok "$what"; fi; }
# finish: the summary line, and the exit status
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

r() { $REPLICA "$@"; }
now_ms() { date +%s%3N; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_node NAME SERVE-ARGS...: serve NAME's directory in the background, logging to NAME.log
start_node() {
    local name=$1
    shift
    # not through r(): a backgrounded function is a subshell, whose pid is not the node's
    $REPLICA --dir "$T/$name" serve "$@" 2>>"$T/$name.log" &
    PID[$name]=$!
}
stop() {   # stop NAME [SIGNAL]
    kill "-${2:-TERM}" "${PID[$1]}" 2>/dev/null
    wait "${PID[$1]}" 2>/dev/null
    local rc=$?
    PID[$1]=
    return $rc
}

# connected NAME: how many peers NAME's node has connected (-1: no node answers)
connected() {
    r --dir "$T/$1" status --json 2>/dev/null | python3 -c '
import json, sys
try:
    n = json.load(sys.stdin)["node"]
    print(-1 if n is None else sum(p["connected"] for p in n["peers"]))
except Exception:
    print(-1)'
}
# connected_names NAME: the device names of NAME's connected peers, sorted, one line
connected_names() {
    r --dir "$T/$1" status --json 2>/dev/null | python3 -c '
import json, sys
n = json.load(sys.stdin)["node"] or {"peers": []}
print(" ".join(sorted(p["device_name"] or "?" for p in n["peers"] if p["connected"])))'
}
# wait_connected SECONDS N NAME...: every NAME has N connected peers
wait_connected() {
    local secs=$1 want=$2 deadline
    shift 2
    deadline=$(($(now_ms) + secs * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        local all=1
        for n in "$@"; do [ "$(connected "$n")" -ge "$want" ] || { all=0; break; }; done
        [ $all -eq 1 ] && return 0
        sleep 0.1
    done
    return 1
}
digests() { for n in "$@"; do r --dir "$T/$n" digest; done; }
# converge SECONDS NAME...: all digests equal within SECONDS
converge() {
    local secs=$1 deadline
    shift
    deadline=$(($(now_ms) + secs * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        [ "$(digests "$@" | sort -u | wc -l)" -eq 1 ] && return 0
        sleep 0.1
    done
    digests "$@" | sed 's/^/# digest /'
    return 1
}
count() { r --dir "$T/$1" ls "$2" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["records"]))'; }
# appears NAME KEY FIELD SECONDS: NAME has field FIELD of record KEY within SECONDS
appears() {
    local deadline=$(($(now_ms) + $4 * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        r --dir "$T/$1" get "$2" "$3" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
