-- wrk script: Twilio-signed requests from tables made by twilio_sign.py, and a strict tally of the answers.
--
--   WRK_TABLES   directory with t<k>.tsv, one file per wrk thread: call number, the text its answer must contain
--                (the step's TwiML verb), path, signature, form body
--   WRK_THREADS  the -t given to wrk (each thread reads its own file)
--   WRK_MODE     cycle  - each thread sends its rows in order, round and round (closed loop)
--                calls  - whole calls: each thread must have ONE connection (-tN -cN), so its calls go in order,
--                         step after step, one at a time, as Twilio sends a call's webhooks
--                once   - each row once, then the last row again until wrk is stopped (run-all.sh sends SIGINT
--                         when Redis shows every caller enqueued)
--                paced  - open loop at WRK_RATE requests per second over all threads: every row has its due time,
--                         sent then on whichever of the thread's connections is free; a row sent after its due
--                         time (no free connection) is counted as late
--   WRK_EXPECT   (optional) the text every answer must contain instead (the bare stack's fixed answer)
--
-- Every answer is checked: HTTP 200, a body starting "<?xml" and containing the expected verb; anything else is
-- counted (403 apart). done() prints "BENCH k=v" lines for run-all.sh (latencies in ms).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()  -- monotonic seconds
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then error("wrk_signed.lua: set " .. name) end
    return default
  end
  return v
end

function init(args)
  mode = env("WRK_MODE", "cycle")
  expect_all = os.getenv("WRK_EXPECT")
  local nthreads = tonumber(env("WRK_THREADS"))
  -- The host the rows were signed for: the peer checks the signature against request.url, which it builds from
  -- the Host header, so every target gets the service's host (nil: wrk's own, the target's address).
  host = os.getenv("WRK_HOST")
  if host == "" then host = nil end
  rows = {}       -- formatted requests
  expects = {}    -- what each row's answer must contain
  calls = {}      -- call number of each row
  local file = env("WRK_TABLES") .. "/t" .. id .. ".tsv"
  for line in io.lines(file) do
    local call, expect, path, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if call == nil then error("wrk_signed.lua: bad row in " .. file) end
    rows[#rows + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = sig,
      ["Host"] = host,
    }, body)
    expects[#expects + 1] = expect
    calls[#calls + 1] = call
  end
  if #rows == 0 then error("wrk_signed.lua: no rows in " .. file) end
  i = 0              -- last row sent
  verifying = id == 0
  answered = 0       -- rows answered
  ok, status_403, status_other, wrong_body, first_bad = 0, 0, 0, 0, 0
  calls_done, wrapped = 0, 0
  late, late_max_ms = 0, 0
  if mode == "paced" then
    local rate = tonumber(env("WRK_RATE")) / nthreads  -- this thread's requests per second
    interval = 1 / rate
    start = nil
    slot = 0
  end
  sent = {}  -- rows in flight, oldest first
end

function delay()
  if mode ~= "paced" then return 0 end
  local t = now()
  if start == nil then start = t + interval * id / 4 end  -- threads interleave their slots
  local due = start + slot * interval
  slot = slot + 1
  local wait = due - t
  if wait < 0 then
    late = late + 1
    if -wait * 1000 > late_max_ms then late_max_ms = -wait * 1000 end
    return 0
  end
  return math.floor(wait * 1000)
end

function request()
  if verifying then  -- wrk asks thread 0 for one request before the run, only to check it: send nothing from it
    verifying = false
    return rows[1]
  end
  i = i + 1
  if i > #rows then
    if mode == "once" then
      -- Nothing left: resend the last row (counted apart) until run-all.sh stops wrk. (Stopping the thread would
      -- leave its reconnected sockets open without a request, and each would hold a sync worker until timeout.)
      i = #rows
      wrapped = wrapped + 1
      return rows[#rows]
    end
    i = 1
    wrapped = wrapped + 1
  end
  sent[#sent + 1] = i
  return rows[i]
end

function response(status, headers, body)
  -- With one connection per thread (calls mode) answers come in the order sent; in the other modes every row of
  -- a table is the same step, so any row's expectation will do.
  local row = table.remove(sent, 1) or i
  local want = expect_all or expects[row]
  answered = answered + 1
  if status == 200 and body:sub(1, 5) == "<?xml" and body:find(want, 1, true) then
    ok = ok + 1
    if mode == "calls" and (row == #rows or calls[row + 1] ~= calls[row]) then
      calls_done = calls_done + 1
    end
  elseif status == 200 then
    wrong_body = wrong_body + 1
    if first_bad == 0 then first_bad = 200 end
  else
    if status == 403 then status_403 = status_403 + 1 else status_other = status_other + 1 end
    if first_bad == 0 then first_bad = status end
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, status_403 = 0, status_other = 0, wrong_body = 0, first_bad = 0, calls_done = 0,
              wrapped = 0, late = 0, late_max_ms = 0, rows = 0 }
  for _, thread in ipairs(threads) do
    for _, k in ipairs({ "ok", "status_403", "status_other", "wrong_body", "calls_done", "wrapped", "late" }) do
      t[k] = t[k] + thread:get(k)
    end
    if t.first_bad == 0 then t.first_bad = thread:get("first_bad") end
    t.late_max_ms = math.max(t.late_max_ms, thread:get("late_max_ms"))
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format("BENCH requests=%d seconds=%.3f rps=%.1f calls=%d calls_per_s=%.1f\n",
                         summary.requests, seconds, summary.requests / seconds, t.calls_done,
                         t.calls_done / seconds))
  io.write(string.format("BENCH p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f mean_ms=%.2f stdev_ms=%.2f\n",
                         latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                         latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
                         latency.stdev / 1000))
  io.write(string.format("BENCH ok=%d status_403=%d status_other=%d first_bad=%d wrong_body=%d wrapped=%d\n",
                         t.ok, t.status_403, t.status_other, t.first_bad, t.wrong_body, t.wrapped))
  io.write(string.format("BENCH late=%d late_max_ms=%.1f\n", t.late, t.late_max_ms))
  io.write(string.format("BENCH errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d errors_status=%d\n",
                         e.connect, e.read, e.write, e.timeout, e.status))
end
