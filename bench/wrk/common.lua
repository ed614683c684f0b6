-- Shared by the Workhorse wrk scripts (bench/bench_api.py runs them).
-- Settings come from the environment:
--   WRK_TOKEN     API token (sent as "Authorization: OAuth <token>")
--   WRK_DELAY_MS  optional mean pause between two requests of one connection (pacing);
--                 each pause is drawn uniformly from [0.5, 1.5] x the mean
-- done() prints one JSON line: requests, seconds, per_s, errors, latency percentiles (ms).

local common = {}

function common.headers()
  return {
    ["Authorization"] = "OAuth " .. os.getenv("WRK_TOKEN"),
    ["Content-Type"] = "application/json",
  }
end

local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")

function common.install()
  if delay_ms > 0 then
    math.randomseed(os.time())
    delay = function()
      return delay_ms * (0.5 + math.random())
    end
  end
  done = function(summary, latency, requests)
    local seconds = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
      '{"wrk": true, "requests": %d, "seconds": %.3f, "per_s": %.1f, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"mean_ms": %.3f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "p999_ms": %.3f, ' ..
      '"max_ms": %.3f, "delay_ms": %.3f}\n',
      summary.requests, seconds, summary.requests / seconds, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000,
      delay_ms))
  end
end

return common
