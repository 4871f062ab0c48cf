-- wrk script for `make bench`: POST one breast-cancer instance to the predict route.
--
-- The row is sklearn.datasets.load_breast_cancer().data[0] (a malignant case), as a
-- positional array in the order of the 30 inputs that GET /v1/models/breast_cancer lists
-- (sklearn's feature_names order; bench/run.sh checks it). The demo model answers
-- P(malignant) ~ 0.9999999988 for it.
--
-- done() prints one machine-readable line that bench/run.sh parses:
--   BENCH requests=N duration_us=N rps=F p50_us=F p90_us=F p99_us=F max_us=F
--         status_errors=N connect_errors=N read_errors=N write_errors=N timeout_errors=N bytes=N

local row = {
  17.99, 10.38, 122.8, 1001.0, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871,
  1.095, 0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193,
  25.38, 17.33, 184.6, 2019.0, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189,
}

local parts = {}
for i, v in ipairs(row) do
  parts[i] = tostring(v)
end

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/models/breast_cancer:predict"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"instances":[[' .. table.concat(parts, ",") .. ']]}'

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f " ..
    "status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeout_errors=%d bytes=%d\n",
    summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, summary.bytes))
end
