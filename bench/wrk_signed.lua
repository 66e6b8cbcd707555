-- wrk script: the same Twilio-signed POST on every request, plus a strict tally of the answers.
--
-- The signature and body come from the environment (bench/incoming.sh computes them with twilio's
-- RequestValidator for the exact URL wrk is given):
--   WRK_SIGNATURE  value for X-Twilio-Signature
--   WRK_BODY       application/x-www-form-urlencoded form fields
--
-- done() prints machine-readable lines starting with "BENCH " (latencies in ms) that incoming.sh parses:
-- every answer must be HTTP 200 and TwiML containing <Gather, or the run is failed.

local signature = os.getenv("WRK_SIGNATURE")
local body = os.getenv("WRK_BODY")
if signature == nil or signature == "" or body == nil or body == "" then
  error("wrk_signed.lua: set WRK_SIGNATURE and WRK_BODY")
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Twilio-Signature"] = signature

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0            -- 200 with a <?xml ... <Gather answer
  status_403 = 0    -- signature refused
  status_other = 0  -- any other non-200 status
  first_bad = 0     -- first non-200 status seen (0: none)
  not_menu = 0      -- 200 but not the voice menu (e.g. the fallback TwiML)
end

function response(status, headers, resp_body)
  if status == 200 then
    if string.sub(resp_body, 1, 5) == "<?xml" and string.find(resp_body, "<Gather", 1, true) then
      ok = ok + 1
    else
      not_menu = not_menu + 1
    end
  else
    if status == 403 then status_403 = status_403 + 1 else status_other = status_other + 1 end
    if first_bad == 0 then first_bad = status end
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, status_403 = 0, status_other = 0, not_menu = 0, first_bad = 0 }
  for _, thread in ipairs(threads) do
    t.ok = t.ok + thread:get("ok")
    t.status_403 = t.status_403 + thread:get("status_403")
    t.status_other = t.status_other + thread:get("status_other")
    t.not_menu = t.not_menu + thread:get("not_menu")
    if t.first_bad == 0 then t.first_bad = thread:get("first_bad") end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format("BENCH requests=%d seconds=%.3f rps=%.1f\n",
                         summary.requests, seconds, summary.requests / seconds))
  io.write(string.format("BENCH p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f mean_ms=%.2f stdev_ms=%.2f\n",
                         latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                         latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
                         latency.stdev / 1000))
  io.write(string.format("BENCH ok=%d status_403=%d status_other=%d first_bad=%d not_menu=%d\n",
                         t.ok, t.status_403, t.status_other, t.first_bad, t.not_menu))
  io.write(string.format("BENCH errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d errors_status=%d\n",
                         e.connect, e.read, e.write, e.timeout, e.status))
end
