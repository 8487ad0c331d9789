-- wrk script: listing with a mix of filters, as dashboards and reports ask.
local key = os.getenv("PREGONERO_KEY")
local n = 0
local queries = {
  "/v1/messages?limit=50",
  "/v1/messages?status=pending&limit=50",
  "/v1/messages?phone=71234567&limit=50",
  "/v1/messages?status=cancelled&limit=50",
  "/v1/messages?from=2026-01-01&limit=100",
}

request = function()
  n = n + 1
  return wrk.format("GET", queries[(n % #queries) + 1], {
    ["Authorization"] = "Bearer " .. key,
  })
end

response = function(status, headers, body)
  if status ~= 200 then
    print("unexpected status " .. status)
  end
end

done = function(summary, latency, requests)
  io.write(string.format("percentiles: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms; errors %d\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
