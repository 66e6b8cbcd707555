# Shared by bench/run-all.sh and bench/soak.sh (sourced, not run): Redis, `ivr serve` and the bare Flask app on
# free loopback ports, signed wrk runs with strict answer checks, CPU accounting, per-worker memory.

PY=${PY:-python3}
IVR=${IVR:-ivr}
WRK=${WRK:-wrk}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_CLI=${REDIS_CLI:-redis-cli}
WORKERS=${WORKERS:-}
CLOCK=${IVR_CLOCK:-2025-05-03T03:00:00+09:00}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
LUA="$HERE/wrk_signed.lua"
SIGN="$HERE/twilio_sign.py"
NAME=$(basename "$0")

FAIL_MSG=""
die() { FAIL_MSG="$*"; echo "$NAME: FAIL: $*" >&2; exit 1; }

for bin in "$PY" "$IVR" "$WRK" "$REDIS_SERVER" "$REDIS_CLI" setsid; do
  command -v "$bin" >/dev/null || die "'$bin' not found on PATH (PATH=\$PWD/.venv/bin:\$PATH, or set PY/IVR/...)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ivr-bench.XXXXXX")
REDIS_PID=""
IVR_PID=""
BARE_PID=""
PEER_PID=""
PEERV_PID=""
SAMPLER_PID=""

stop_group() {  # stop_group PID: the process group setsid made for a server (gunicorn master and workers)
  kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null
  for _ in $(seq 100); do kill -0 -- "-$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

cleanup() {
  local rc=$?
  set +e
  [[ -n $SAMPLER_PID ]] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  [[ -n $IVR_PID ]] && stop_group "$IVR_PID"
  [[ -n $BARE_PID ]] && stop_group "$BARE_PID"
  [[ -n $PEER_PID ]] && stop_group "$PEER_PID"
  [[ -n $PEERV_PID ]] && stop_group "$PEERV_PID"
  if [[ -n $REDIS_PID ]]; then
    kill -TERM "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
  fi
  if [[ $rc -ne 0 && -f $TMP/ivr.log ]]; then
    echo "--- last lines of the service's log ($TMP/ivr.log) ---" >&2
    tail -n 20 "$TMP/ivr.log" >&2
  fi
  if [[ ${KEEP_TMP:-0} == 1 || $rc -ne 0 ]]; then
    echo "(temp dir kept: $TMP)" >&2
  else
    rm -rf "$TMP"
  fi
  [[ $rc -ne 0 ]] && echo "$NAME: FAILED (exit $rc)${FAIL_MSG:+: $FAIL_MSG}" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

load_now() { cut -d" " -f1-3 /proc/loadavg; }

machine() {
  echo "== machine"
  echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc:    $(nproc)"
  echo "cpu:      $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "memory:   $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "loadavg:  $(load_now) (1/5/15 min, before the run)"
  echo "python:   $("$PY" --version 2>&1) ($(command -v "$PY"))"
  echo "gunicorn: $("$PY" -c 'import gunicorn; print(gunicorn.__version__)')," \
       "$(cd "$TMP" && REDIS_URL=redis://127.0.0.1:1/0 "$PY" -c 'import runpy, os, ivr
c = runpy.run_path(os.path.join(os.path.dirname(ivr.__file__), "gunicorn_conf.py"))
print("worker_class", c["worker_class"], "workers", c["workers"], "threads", c.get("threads", 1),
      "keepalive", c.get("keepalive", 2))' 2>/dev/null)"
  echo "wrk:      $("$WRK" -v 2>&1 | head -n 1 || true)"
  echo "redis:    $("$REDIS_SERVER" --version)"
  local code
  code=$(cd "$TMP" && "$PY" -c 'import os, ivr; print(os.path.dirname(os.path.dirname(os.path.abspath(ivr.__file__))))')
  if git -C "$code" rev-parse --show-toplevel >/dev/null 2>&1; then
    echo "code:     $code (git $(git -C "$code" rev-parse --short HEAD)," \
         "$(git -C "$code" status --porcelain --untracked-files=no | wc -l) tracked files modified)"
  else
    echo "code:     $code (not a git checkout)"
  fi
}

start_redis() {
  REDIS_PORT=$(free_port)
  "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$TMP" --logfile "$TMP/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 50); do
    [[ $("$REDIS_CLI" -p "$REDIS_PORT" ping 2>/dev/null || true) == PONG ]] && return 0
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited (see $TMP/redis.log)"
    sleep 0.1
  done
  die "redis-server not answering"
}

wait_healthy() {  # wait_healthy PID BASE
  for _ in $(seq 60); do
    kill -0 "$1" 2>/dev/null || die "the server for $2 exited during start-up"
    "$PY" "$SIGN" wait "$2" 0.5 2>/dev/null && return 0
  done
  die "$2/healthz never answered 200"
}

# The service as production runs it: `ivr serve` (gunicorn, ivr/gunicorn_conf.py) with Redis, multiprocess
# metrics and JSON log lines. Started from the temp dir: `python -m gunicorn` puts the working directory first on
# sys.path, so the caller's directory must not decide which `ivr` is imported.
start_ivr() {
  IVR_PORT=$(free_port)
  IVR_BASE="http://127.0.0.1:$IVR_PORT"
  export TWILIO_AUTH_TOKEN="bench-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"  # this run only
  export IVR_ADMIN_TOKEN="bench-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"  # /readyz details
  (cd "$TMP" && exec env -u IVR_PUBLIC_URL -u WEB_CONCURRENCY \
    IVR_CLOCK="$CLOCK" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" PROMETHEUS_MULTIPROC_DIR="$TMP/prometheus" \
    IVR_RUNTIME_DIR="$TMP/runtime" IVR_LOG_LEVEL=info IVR_LOG_FORMAT=json \
    setsid "$IVR" serve --host 127.0.0.1 --port "$IVR_PORT" ${WORKERS:+--workers "$WORKERS"}) >"$TMP/ivr.log" 2>&1 &
  IVR_PID=$!
  wait_healthy "$IVR_PID" "$IVR_BASE"
  "$PY" "$SIGN" ready "$IVR_BASE" redis
  local n=0
  for _ in $(seq 30); do  # every worker booted: the count holds still for 0.3 s
    sleep 0.3
    [[ $(grep -c 'Booting worker' "$TMP/ivr.log") == "$n" && $n -gt 0 ]] && break
    n=$(grep -c 'Booting worker' "$TMP/ivr.log" || true)
  done
  IVR_WORKERS=$n
}

# start_app LOG MODULE [VAR=VALUE...]: a Flask app of bench/ (bare:app, peer:app) under ivr serve's own gunicorn
# config and worker count; REDIS_URL is set (the app never uses it) only so the config keeps that many workers, as it
# does for the service (without it, the config runs one). Fails unless the same number of workers booted. Sets
# APP_PID and APP_BASE.
start_app() {
  local log=$1 module=$2 port workers conf
  shift 2
  port=$(free_port)
  workers=${WORKERS:-$IVR_WORKERS}
  conf=$(cd "$TMP" && "$PY" -c 'import ivr, os; print(os.path.join(os.path.dirname(ivr.__file__), "gunicorn_conf.py"))')
  (cd "$TMP" && exec env -u PROMETHEUS_MULTIPROC_DIR -u IVR_RUNTIME_DIR REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
    IVR_BIND="127.0.0.1:$port" WEB_CONCURRENCY="$workers" "$@" \
    setsid "$PY" -m gunicorn -c "$conf" --pythonpath "$HERE" "$module") >"$TMP/$log" 2>&1 &
  APP_PID=$!
  APP_BASE="http://127.0.0.1:$port"
  wait_healthy "$APP_PID" "$APP_BASE"
  for _ in $(seq 50); do [[ $(grep -c 'Booting worker' "$TMP/$log") -ge $workers ]] && break; sleep 0.1; done
  [[ $(grep -c 'Booting worker' "$TMP/$log") == "$workers" ]] || die "$module: not $workers workers (see $TMP/$log)"
}

start_bare() {
  start_app bare.log bare:app
  BARE_PID=$APP_PID
  BARE_BASE=$APP_BASE
}

# start_peer VALIDATE: the peer (bench/peer.py, Twilio's Flask phone-tree sample's shape), without (0) or with (1)
# the request validation of Twilio's Flask security guide.
start_peer() {
  start_app "peer$1.log" peer:app PEER_VALIDATE="$1"
  if [[ $1 == 1 ]]; then PEERV_PID=$APP_PID; PEERV_BASE=$APP_BASE; else PEER_PID=$APP_PID; PEER_BASE=$APP_BASE; fi
}

# Resident memory of every worker of the service, every few seconds, into $TMP/rss.tsv (time, pid, kB).
start_sampler() {
  local every=${1:-2}
  (while true; do
     local now
     now=$(date +%s)  # one time per round, so a round's samples stay together
     for pid in $(ps -e -o pid=,ppid= | awk -v m="$IVR_PID" '$2 == m {print $1}'); do
       awk -v t="$now" -v p="$pid" '/^VmRSS/ {print t "\t" p "\t" $2}' "/proc/$pid/status" 2>/dev/null
     done
     sleep "$every"
   done) >"$TMP/rss.tsv" &
  SAMPLER_PID=$!
}

field() {  # field NAME FILE: a value from wrk_signed.lua's "BENCH k=v ..." lines
  { grep '^BENCH ' "$2" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; } || true
}

machine_ticks() { awk '/^cpu /{busy = $2 + $3 + $4 + $7 + $8 + $9; all = busy + $5 + $6; print busy, all}' /proc/stat; }
group_ticks() {  # group_ticks PGID [PID...]: utime+stime of a process group and extra processes
  local g=$1
  shift
  local pids
  pids=$(ps -e -o pid=,pgid= | awk -v g="$g" '$2 == g {print $1}')
  for pid in $pids "$@"; do
    sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}'  # fields 14, 15 of stat
  done | awk '{t += $1} END {print t + 0}'
}
children_ticks() {  # user+sys of this shell's waited-for children, from a `times` dump, in ticks
  sed -n 2p "$1" | awk -v hz="$(getconf CLK_TCK)" '{
    n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } print int(n * hz + 0.5) }'
}

# run_wrk LABEL TARGET TABLES MODE [WRK_ARGS...]: one wrk run on TARGET (ivr or bare) from the signed tables in
# TABLES; fails unless every answer was 200 TwiML with the expected verb and wrk saw no socket error. Writes
# $TMP/LABEL.txt (wrk's output plus CPU and load lines, all parsed with `field`).
run_wrk() {
  local label=$1 target=$2 tables=$3 mode=$4
  shift 4
  local out="$TMP/$label.txt" base pgid expect=""
  local threads
  threads=$(printf '%s\n' "$@" | sed -n 's/^-t//p' | head -n 1)
  case $target in
    ivr) base=$IVR_BASE; pgid=$IVR_PID ;;
    bare) base=$BARE_BASE; pgid=$BARE_PID; expect="<Response" ;;
    peer) base=$PEER_BASE; pgid=$PEER_PID; expect="<Response" ;;
    peerv) base=$PEERV_BASE; pgid=$PEERV_PID; expect="<Response" ;;
    *) die "run_wrk: unknown target $target" ;;
  esac
  local load0 busy0 all0 ours0 kids0 busy1 all1 ours1 kids1
  load0=$(load_now)
  times >"$TMP/times0"
  read -r busy0 all0 < <(machine_ticks); ours0=$(group_ticks "$pgid" "$REDIS_PID"); kids0=$(children_ticks "$TMP/times0")
  WRK_TABLES=$tables WRK_THREADS=$threads WRK_MODE=$mode WRK_EXPECT=$expect WRK_HOST=${IVR_BASE#http://} \
    "$WRK" "$@" --latency -s "$LUA" "$base" >"$out" 2>&1 &
  local wrk_pid=$!
  if [[ -n ${UNTIL:-} ]]; then  # stop wrk (SIGINT: it still reports) once this command succeeds
    while kill -0 "$wrk_pid" 2>/dev/null && ! eval "$UNTIL"; do sleep 0.5; done
    sleep 1
    kill -INT "$wrk_pid" 2>/dev/null || true
  fi
  wait "$wrk_pid" || { cat "$out" >&2; die "$label: wrk failed"; }
  times >"$TMP/times1"
  read -r busy1 all1 < <(machine_ticks); ours1=$(group_ticks "$pgid" "$REDIS_PID"); kids1=$(children_ticks "$TMP/times1")
  local d=$((all1 - all0)) hz
  hz=$(getconf CLK_TCK)
  share() { awk -v n="$1" -v d="$d" 'BEGIN {printf "%.0f", (d > 0 ? 100 * n / d : 0)}'; }
  {
    echo "BENCH cpu_server=$(share $((ours1 - ours0))) cpu_wrk=$(share $((kids1 - kids0)))" \
         "cpu_other=$(share $(((busy1 - busy0) - (ours1 - ours0) - (kids1 - kids0)))) cpu_idle=$(share $((d - (busy1 - busy0))))"
    echo "BENCH cpu_ms_per_req=$(awk -v t=$((ours1 - ours0)) -v hz="$hz" -v n="$(field requests "$out")" \
         'BEGIN {printf "%.2f", (n > 0 ? 1000 * t / hz / n : 0)}') load=${load0// /\/}"
  } >>"$out"
  local requests ok bad
  requests=$(field requests "$out")
  ok=$(field ok "$out")
  [[ -n $requests && -n $ok ]] || { cat "$out" >&2; die "$label: no BENCH lines in the wrk output (Lua error?)"; }
  [[ $requests -gt 0 ]] || die "$label: wrk completed no request"
  for k in status_403 status_other wrong_body errors_connect errors_read errors_write errors_timeout errors_status; do
    bad=$(field "$k" "$out")
    [[ $bad == 0 ]] || die "$label: $k=$bad (first bad status: $(field first_bad "$out")) -- results are not valid"
  done
  printf '%-20s %-4s %7s req/s  p50 %6s  p99 %6s ms  %5s ms CPU/req  cpu: server+redis %s%% wrk %s%% other %s%% idle %s%%  load %s\n' \
    "$label" "$target" "$(field rps "$out")" "$(field p50_ms "$out")" "$(field p99_ms "$out")" \
    "$(field cpu_ms_per_req "$out")" "$(field cpu_server "$out")" "$(field cpu_wrk "$out")" \
    "$(field cpu_other "$out")" "$(field cpu_idle "$out")" "$(field load "$out")"
}

# After the runs: the service stayed on Redis, logged no failure, and no worker was restarted.
check_server_log() {  # check_server_log FROM_LINE
  "$PY" "$SIGN" ready "$IVR_BASE" redis >/dev/null
  if tail -n +"$(($1 + 1))" "$TMP/ivr.log" \
      | grep -E -e 'store_unreachable|webhook_failed|webhook_rejected|fallback_failed|request_failed' \
             -e 'Traceback|WORKER TIMEOUT|\[CRITICAL\]|\[ERROR\]' \
      | head -n 5 >"$TMP/problems.txt" && [[ -s $TMP/problems.txt ]]; then
    cat "$TMP/problems.txt" >&2
    die "the service logged failures during the runs (above)"
  fi
  local booted
  booted=$(grep -c 'Booting worker' "$TMP/ivr.log" || true)
  [[ $booted == "$IVR_WORKERS" ]] || die "a gunicorn worker was restarted during the runs ($booted boots)"
}
