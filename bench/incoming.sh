#!/usr/bin/env bash
# Latency benchmark for POST /voice/incoming served by `ivr serve` (gunicorn, sync workers) with a real Redis.
#
#   bench/incoming.sh                          # from the project's venv (ivr, python3 on PATH)
#   PATH=/path/to/venv/bin:$PATH bench/incoming.sh
#
# Knobs (environment): PY IVR WRK REDIS_SERVER REDIS_CLI (binaries), THREADS (2) CONNS (32) DURATION (20s)
# WARMUP (5s), WORKERS (empty: ivr's default, 2 per core), IVR_CLOCK (a time a campaign window is open),
# KEEP_TMP=1 keeps the temp dir (server/redis logs, wrk output).
#
# Fails (non-zero exit) unless every answer is HTTP 200 with the voice menu (<Gather), wrk saw no socket
# errors, the store stayed on Redis (not degraded) and the server logged no failure.
set -euo pipefail

PY=${PY:-python3}
IVR=${IVR:-ivr}
WRK=${WRK:-wrk}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_CLI=${REDIS_CLI:-redis-cli}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
WORKERS=${WORKERS:-}
CLOCK=${IVR_CLOCK:-2025-05-03T03:00:00+09:00}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LUA="$HERE/wrk_signed.lua"
SIGN="$HERE/twilio_sign.py"

FAIL_MSG=""
die() { FAIL_MSG="$*"; echo "incoming.sh: FAIL: $*" >&2; exit 1; }

for bin in "$PY" "$IVR" "$WRK" "$REDIS_SERVER" "$REDIS_CLI" setsid; do
  command -v "$bin" >/dev/null || die "'$bin' not found on PATH (activate the project's venv, or set PY/IVR/...)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ivr-bench.XXXXXX")
SERVER_PID=""
REDIS_PID=""

cleanup() {
  local rc=$?
  set +e
  if [[ -n $SERVER_PID ]]; then
    # setsid made the server the leader of its own process group: stop the gunicorn master and its workers.
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 -- "-$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [[ -n $REDIS_PID ]]; then
    kill -TERM "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
  fi
  if [[ $rc -ne 0 && -f $TMP/server.log ]]; then
    echo "--- last lines of the server log ($TMP/server.log) ---" >&2
    tail -n 20 "$TMP/server.log" >&2
  fi
  if [[ ${KEEP_TMP:-0} == 1 || $rc -ne 0 ]]; then
    echo "(temp dir kept: $TMP)" >&2
  else
    rm -rf "$TMP"
  fi
  if [[ $rc -ne 0 ]]; then
    echo "incoming.sh: FAILED (exit $rc)${FAIL_MSG:+: $FAIL_MSG}" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# -- the machine ------------------------------------------------------------------------------------------
echo "== machine"
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc:    $(nproc)"
echo "loadavg:  $(cut -d" " -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
echo "cpu:      $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "python:   $("$PY" --version 2>&1) ($(command -v "$PY"))"
echo "gunicorn: $("$PY" -c 'import gunicorn; print(gunicorn.__version__)')"
echo "wrk:      $("$WRK" -v 2>&1 | head -n 1 || true)"
echo "redis:    $("$REDIS_SERVER" --version)"

CODE=$(cd "$TMP" && "$PY" -c 'import os, ivr; print(os.path.dirname(os.path.dirname(os.path.abspath(ivr.__file__))))')
if git -C "$CODE" rev-parse --show-toplevel >/dev/null 2>&1; then
  dirty=$(git -C "$CODE" status --porcelain --untracked-files=no | wc -l)
  echo "code:     $CODE (git $(git -C "$CODE" rev-parse --short HEAD), $dirty tracked files modified)"
else
  echo "code:     $CODE (not a git checkout)"
fi

# -- redis ------------------------------------------------------------------------------------------------
REDIS_PORT=$(free_port)
"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$TMP" --logfile "$TMP/redis.log" &
REDIS_PID=$!
for _ in $(seq 50); do
  [[ $("$REDIS_CLI" -p "$REDIS_PORT" ping 2>/dev/null || true) == PONG ]] && break
  kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited (see $TMP/redis.log)"
  sleep 0.1
done
[[ $("$REDIS_CLI" -p "$REDIS_PORT" ping 2>/dev/null || true) == PONG ]] || die "redis-server not answering"

# -- ivr serve --------------------------------------------------------------------------------------------
PORT=$(free_port)
while [[ $PORT == "$REDIS_PORT" ]]; do PORT=$(free_port); done
BASE="http://127.0.0.1:$PORT"
URL="$BASE/voice/incoming"
# A throwaway token for this run only (never a real account's).
export TWILIO_AUTH_TOKEN="bench-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"

# Started from the temp dir: `python -m gunicorn` puts the working directory first on sys.path, so the caller's
# directory must not decide which `ivr` is imported (the installed one, or PYTHONPATH's when that is set).
(cd "$TMP" && exec env -u IVR_PUBLIC_URL -u WEB_CONCURRENCY \
  IVR_CLOCK="$CLOCK" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" PROMETHEUS_MULTIPROC_DIR="$TMP/prometheus" \
  IVR_LOG_LEVEL=info IVR_LOG_FORMAT=json \
  setsid "$IVR" serve --host 127.0.0.1 --port "$PORT" ${WORKERS:+--workers "$WORKERS"}) >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 60); do
  kill -0 "$SERVER_PID" 2>/dev/null || die "ivr serve exited during start-up"
  if "$PY" "$SIGN" wait "$BASE" 0.5 2>/dev/null; then ready=1; break; fi
done
[[ $ready == 1 ]] || die "$BASE/healthz never answered 200"
"$PY" "$SIGN" ready "$BASE" redis

# -- one signed request first -----------------------------------------------------------------------------
SIGNED=$("$PY" "$SIGN" sign "$URL")
WRK_SIGNATURE=$(sed -n 1p <<<"$SIGNED")
WRK_BODY=$(sed -n 2p <<<"$SIGNED")
CALL_SID=$(sed -n 3p <<<"$SIGNED")
export WRK_SIGNATURE WRK_BODY
[[ -n $WRK_SIGNATURE && -n $WRK_BODY && -n $CALL_SID ]] || die "could not sign the request"
"$PY" "$SIGN" check "$URL" "$WRK_SIGNATURE" "$WRK_BODY"
LOG_MARK=$(wc -l <"$TMP/server.log")  # the one deliberate 403 (unsigned check) is above this line

# -- wrk --------------------------------------------------------------------------------------------------
field() {  # field NAME FILE: a value from wrk_signed.lua's "BENCH k=v ..." lines
  { grep '^BENCH ' "$2" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; } || true
}

run_wrk() {  # run_wrk LABEL DURATION
  local out="$TMP/wrk-$1.txt"
  echo
  echo "== $1: $WRK -t$THREADS -c$CONNS -d$2 --latency -s bench/wrk_signed.lua $URL"
  "$WRK" -t"$THREADS" -c"$CONNS" -d"$2" --latency -s "$LUA" "$URL" | tee "$out"
  local requests ok bad
  requests=$(field requests "$out")
  ok=$(field ok "$out")
  [[ -n $requests && -n $ok ]] || die "$1: no BENCH lines in the wrk output (Lua error?)"
  [[ $requests -gt 0 ]] || die "$1: wrk completed no request"
  for k in status_403 status_other not_menu errors_connect errors_read errors_write errors_timeout errors_status; do
    bad=$(field "$k" "$out")
    [[ $bad == 0 ]] || die "$1: $k=$bad (first non-200 status: $(field first_bad "$out")) -- results are not valid"
  done
  [[ $ok == "$requests" ]] || die "$1: only $ok of $requests answers were 200 with the voice menu"
}

# CPU accounting over the measured run, to see how much of the machine went to something else
# (wrk and the server share the same cores; another job on the box skews the figures).
machine_ticks() { awk '/^cpu /{busy = $2 + $3 + $4 + $7 + $8 + $9; all = busy + $5 + $6; print busy, all}' /proc/stat; }
our_ticks() {  # utime+stime of the server's process group and redis-server
  local pids
  pids=$(ps -e -o pid=,pgid= | awk -v g="$SERVER_PID" '$2 == g {print $1}')
  for pid in $pids $REDIS_PID; do
    sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}'  # fields 14, 15 of stat
  done | awk '{t += $1} END {print t + 0}'
}
children_ticks() {  # user+sys of this shell's waited-for children, from a `times` dump, in ticks
  sed -n 2p "$1" | awk -v hz="$(getconf CLK_TCK)" '{
    n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } print int(n * hz + 0.5) }'
}

# A fixed pure-Python loop, timed: if it is much slower than usual, the (virtual) CPU itself is slower right now
# (a busy host, or frequency scaling) and so is every figure below.
cpu_probe() {
  "$PY" -c 'import time
t = time.process_time(); x = 0
for i in range(2_000_000): x += i * i
print("%.0f" % ((time.process_time() - t) * 1000))'
}
PROBE_BEFORE=$(cpu_probe)

run_wrk warm-up "$WARMUP"
BOOT_MARK=$(wc -l <"$TMP/server.log")
times >"$TMP/times0"  # in this shell: a subshell would not see the children
read -r busy0 all0 < <(machine_ticks); ours0=$(our_ticks); kids0=$(children_ticks "$TMP/times0")
run_wrk measure "$DURATION"
times >"$TMP/times1"
read -r busy1 all1 < <(machine_ticks); ours1=$(our_ticks); kids1=$(children_ticks "$TMP/times1")
cpu_share() { awk -v n="$1" -v d="$((all1 - all0))" 'BEGIN {printf "%.0f%%", (d > 0 ? 100 * n / d : 0)}'; }
CPU_SERVER=$(cpu_share "$((ours1 - ours0))")
CPU_WRK=$(cpu_share "$((kids1 - kids0))")
CPU_OTHER=$(cpu_share "$(( (busy1 - busy0) - (ours1 - ours0) - (kids1 - kids0) ))")
CPU_IDLE=$(cpu_share "$(( (all1 - all0) - (busy1 - busy0) ))")
CPU_MS_PER_REQ=$(awk -v t="$((ours1 - ours0))" -v hz="$(getconf CLK_TCK)" \
  -v n="$(field requests "$TMP/wrk-measure.txt")" 'BEGIN {printf "%.2f", (n > 0 ? 1000 * t / hz / n : 0)}')
PROBE_AFTER=$(cpu_probe)

# -- after the run: nothing went quietly wrong ------------------------------------------------------------
"$PY" "$SIGN" ready "$BASE" redis
if tail -n +"$((LOG_MARK + 1))" "$TMP/server.log" \
    | grep -E -e 'store_unreachable|webhook_failed|webhook_rejected|fallback_failed|request_failed' \
           -e 'Traceback|WORKER TIMEOUT|\[CRITICAL\]|\[ERROR\]' \
    | head -n 5 >"$TMP/problems.txt" && [[ -s $TMP/problems.txt ]]; then
  cat "$TMP/problems.txt" >&2
  die "the server logged failures during the run (above)"
fi
if tail -n +"$((BOOT_MARK + 1))" "$TMP/server.log" | grep -q 'Booting worker'; then
  die "a gunicorn worker was (re)booted during the measured run"
fi
[[ -n $("$REDIS_CLI" -p "$REDIS_PORT" hget "ivr:call:$CALL_SID" started) ]] \
  || die "the call record ivr:call:<sid> is missing from Redis: the store was not used"
workers=$(grep -c 'Booting worker' "$TMP/server.log" || true)
logged=$(grep -c '"event": "webhook"' "$TMP/server.log" || true)

out="$TMP/wrk-measure.txt"
echo
echo "== result: POST /voice/incoming, $workers gunicorn sync workers, Redis store, $(nproc) cores"
echo "   command: $WRK -t$THREADS -c$CONNS -d$DURATION --latency -s bench/wrk_signed.lua $URL"
printf '   p50      %8s ms\n' "$(field p50_ms "$out")"
printf '   p90      %8s ms\n' "$(field p90_ms "$out")"
printf '   p99      %8s ms\n' "$(field p99_ms "$out")"
printf '   max      %8s ms\n' "$(field max_ms "$out")"
printf '   req/s    %8s\n' "$(field rps "$out")"
echo "   requests: $(field requests "$out") in $(field seconds "$out") s, all HTTP 200 with <Gather; 0 socket errors"
echo "   (server logged $logged webhook lines in all, incl. the check and the warm-up)"
echo "   CPU over the measured run, share of all $(nproc) cores: server+redis $CPU_SERVER, wrk $CPU_WRK," \
     "everything else $CPU_OTHER, idle $CPU_IDLE"
echo "   server+redis CPU time per request: $CPU_MS_PER_REQ ms; CPU probe (fixed Python loop): ${PROBE_BEFORE} ms" \
     "before, ${PROBE_AFTER} ms after"
echo "   (\"everything else\" above a few %, or a probe far above its usual time, means the figures are skewed:"
echo "    another job competed for the cores, or the virtual CPU was slow; rerun when quiet)"
echo "RESULT p50_ms=$(field p50_ms "$out") p99_ms=$(field p99_ms "$out") rps=$(field rps "$out")" \
     "requests=$(field requests "$out") workers=$workers cpu_other=$CPU_OTHER cpu_ms_per_req=$CPU_MS_PER_REQ" \
     "probe_ms=$PROBE_BEFORE/$PROBE_AFTER"
