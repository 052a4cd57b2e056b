#!/bin/sh
# emr-connector.sh — push the office's changes to an HTTP endpoint (a cloud EMR's import API),
# resuming where it stopped: the example connector of `replica changes` (README, "The change
# feed").
#
#   emr-connector.sh URL [CURSOR_FILE]
#
# Each round runs `replica changes --since CURSOR --limit $BATCH --json`, POSTs its JSON lines
# (one per change and record; Content-Type application/x-ndjson) to URL, and saves the cursor
# the feed printed into CURSOR_FILE only once the endpoint answered 2xx. So delivery is
# at-least-once: a POST that failed (or whose answer was lost) is sent again by the next run,
# and the endpoint should treat a line it has seen (same actor, seq and key) as done. It
# repeats while the feed has more, then exits 0; it exits 1 when a POST fails (run it again
# later, e.g. from cron or a systemd timer, until the link is back).
#
# Environment: REPLICA (the replica command, default `replica`; may hold arguments),
# REPLICA_DIR (the replica directory, as for replica), BATCH (changes per POST, default 500),
# MAX_ROUNDS (POSTs per run at most, default 1000), CURL_OPTS (extra curl arguments, e.g.
# authentication headers). CURSOR_FILE defaults to $REPLICA_DIR/emr.cursor (./emr.cursor).
# Needs only POSIX sh, curl and replica.
set -u

url=${1:?usage: emr-connector.sh URL [CURSOR_FILE]}
state=${2:-${REPLICA_DIR:-.}/emr.cursor}
replica=${REPLICA:-replica}
batch=${BATCH:-500}
max_rounds=${MAX_ROUNDS:-1000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/emr-connector.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

say() { printf 'emr-connector: %s\n' "$*" >&2; }

round=0
sent=0
while [ "$round" -lt "$max_rounds" ]; do
    round=$((round + 1))
    since=
    [ -s "$state" ] && since=$(cat "$state")
    # shellcheck disable=SC2086  # REPLICA may be a command line
    if ! $replica changes ${since:+--since "$since"} --limit "$batch" --json >"$tmp/feed"; then
        say "replica changes failed; nothing sent, the cursor stays"
        exit 1
    fi
    last=$(tail -n 1 "$tmp/feed")
    # the last line is {"cursor":"...","changes":N,"more":BOOL,"partial":BOOL}; a cursor is
    # URL-safe base64, so it needs no JSON unescaping
    next=$(printf '%s\n' "$last" | sed -n 's/^{"cursor":"\([A-Za-z0-9_-]*\)".*/\1/p')
    if [ -z "$next" ]; then
        say "replica changes printed no cursor; nothing sent"
        exit 1
    fi
    case $last in *'"partial":true'*)
        say "warning: some changes are held by this replica only as state (it caught up from a snapshot) and are not in the feed; sync the affected records another way" ;;
    esac
    sed '$d' "$tmp/feed" >"$tmp/body"
    if [ -s "$tmp/body" ]; then
        # shellcheck disable=SC2086  # CURL_OPTS holds several arguments
        code=$(curl -sS -o "$tmp/answer" -w '%{http_code}' -X POST \
            -H 'Content-Type: application/x-ndjson' --data-binary @"$tmp/body" \
            ${CURL_OPTS:-} "$url") || code=000
        case $code in
        2??) ;;
        *)
            say "POST to $url failed (HTTP $code); the cursor stays, the next run sends these again"
            exit 1
            ;;
        esac
        sent=$((sent + $(wc -l <"$tmp/body")))
    fi
    # saved only now: what the endpoint took is never asked for again, what it did not is
    if [ "$next" != "$since" ]; then
        if ! { printf '%s\n' "$next" >"$state.tmp" && mv "$state.tmp" "$state"; }; then
            say "$state: cannot save the cursor (the next run sends these again)"
            exit 1
        fi
    fi
    case $last in *'"more":true'*) ;; *) break ;; esac
done
say "sent $sent line(s) in $round round(s); cursor in $state"
exit 0
