-- wrk's summary as one machine-readable line, for perf/compare.
--
-- Use it as the script (`wrk -s perf/wrk/report.lua ...`) or `require` it
-- from another script (perf/wrk/many.lua); wrk calls the global done() once,
-- after every thread has stopped. Latencies are in microseconds.

local function count(v)
  return string.format("%.0f", v or 0)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write("SLUICE_PERF_JSON {",
    '"duration_us":', count(summary.duration), ",",
    '"requests":', count(summary.requests), ",",
    '"bytes":', count(summary.bytes), ",",
    '"errors_connect":', count(e.connect), ",",
    '"errors_read":', count(e.read), ",",
    '"errors_write":', count(e.write), ",",
    '"errors_status":', count(e.status), ",",
    '"errors_timeout":', count(e.timeout), ",",
    '"latency_p50_us":', count(latency:percentile(50.0)), ",",
    '"latency_p90_us":', count(latency:percentile(90.0)), ",",
    '"latency_p99_us":', count(latency:percentile(99.0)), ",",
    '"latency_mean_us":', string.format("%.1f", latency.mean), ",",
    '"latency_max_us":', count(latency.max),
    "}\n")
end
