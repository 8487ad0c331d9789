-- wrk script: one message a request, each with a fresh recipient and no ref (the server makes one).
local counter = 0
local key = os.getenv("PREGONERO_KEY")

request = function()
  counter = counter + 1
  local body = string.format(
    '{"to":"7%07d","text":"Estimado cliente, su cuota %d vence el 05/12/2026."}',
    counter % 10000000, counter)
  return wrk.format("POST", "/v1/messages", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }, body)
end

response = function(status, headers, body)
  if status ~= 201 then
    print("unexpected status " .. status .. ": " .. body)
  end
end

done = function(summary, latency, requests)
  io.write(string.format("percentiles: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms; errors %d\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
