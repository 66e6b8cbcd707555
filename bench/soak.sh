#!/usr/bin/env bash
# Memory soak: whole calls (incoming, menu, route, two waits, queue-done; signed) at full load for SOAK seconds,
# with the resident memory of every gunicorn worker of `ivr serve` sampled every EVERY seconds.
#
#   PATH=$PWD/.venv/bin:$PATH bench/soak.sh            # 10 minutes (SOAK=600); target: under 150 MB per worker,
#                                                      # no growth from the first minute to the last
#   SOAK=120 PATH=$PWD/.venv/bin:$PATH bench/soak.sh   # a shorter one
#
# Knobs (environment): SOAK (600) EVERY (30) CONNS (32) CALLS (20000; a thread that gets through its calls starts
# them again, and the report says how often), WORKERS, IVR_CLOCK, KEEP_TMP=1, PY IVR WRK REDIS_SERVER REDIS_CLI.
# Fails on any answer that is not 200 TwiML with its step's verb, a socket error, a failure in the service's log or
# a restarted worker.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SOAK=${SOAK:-600}
EVERY=${EVERY:-30}
CONNS=${CONNS:-32}
CALLS=${CALLS:-20000}

machine
start_redis
start_ivr
"$PY" "$SIGN" record "$IVR_BASE" "$TMP/call.json" >/dev/null
"$PY" "$SIGN" tables "$TMP/call.json" "$TMP/t-calls" calls "$CALLS" "$CONNS"
LOG_MARK=$(wc -l <"$TMP/ivr.log")
start_sampler "$EVERY"
echo
echo "== whole calls for $SOAK s, wrk -t$CONNS -c$CONNS; RSS of each worker every $EVERY s"
run_wrk soak ivr "$TMP/t-calls" calls -t"$CONNS" -c"$CONNS" -d"${SOAK}s"
sleep 1
kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
check_server_log "$LOG_MARK"

echo
echo "== resident memory (MB) of each worker, every $EVERY s"
awk -F'\t' '
  !($1 in seen) { seen[$1] = 1; times[++nt] = $1 }
  !($2 in col) { col[$2] = ++np; pids[np] = $2 }
  { rss[$1, $2] = $3 / 1024 }
  END {
    printf "%8s", "s"; for (p = 1; p <= np; p++) printf "  pid %-7s", pids[p]; print ""
    for (t = 1; t <= nt; t++) {
      printf "%8d", times[t] - times[1]
      for (p = 1; p <= np; p++) printf "  %11.1f", rss[times[t], pids[p]]
      print ""
    }
  }' "$TMP/rss.tsv"
summary=$(awk -F'\t' -v every="$EVERY" '
  NR == 1 { t0 = $1 }
  { last = $1; if ($3 > max) max = $3 }
  $1 - t0 < 60 { a += $3; na++ }
  { tail[$1] += $3; ntail[$1]++ }
  END {
    for (t in tail) if (t > last - 60) { b += tail[t]; nb += ntail[t] }
    printf "max %.0f MB; mean over the first minute %.1f MB, over the last minute %.1f MB (%+.1f MB)",
           max / 1024, a / na / 1024, b / nb / 1024, (b / nb - a / na) / 1024
  }' "$TMP/rss.tsv")
echo
echo "RESULT soak ${SOAK}s: $(field calls "$TMP/soak.txt") calls ($(field calls_per_s "$TMP/soak.txt")/s; a thread went back to the start of its calls $(field wrapped "$TMP/soak.txt") times)," \
     "p99 $(field p99_ms "$TMP/soak.txt") ms; RSS per worker: $summary; target under 150 MB and flat"
echo "loadavg after: $(load_now)"
