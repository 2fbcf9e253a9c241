-- wrk script for scripts/bench-proxy.sh: POSTs the body in $BENCH_BODY and prints
-- one machine-readable summary line (BENCH_JSON {...}) when done.
local path = os.getenv("BENCH_BODY")
local file = assert(io.open(path, "rb"), "cannot open BENCH_BODY " .. tostring(path))
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = os.getenv("BENCH_API_KEY") or "sk-bench-key"

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
        '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
        '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.mean, latency.max))
end
