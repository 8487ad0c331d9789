-- wrk script: batches of BATCH_SIZE messages (default 1000) a request.
local key = os.getenv("PREGONERO_KEY")
local size = tonumber(os.getenv("BATCH_SIZE") or "1000")
local round = 0

request = function()
  round = round + 1
  local items = {}
  for i = 1, size do
    items[i] = string.format(
      '{"to":"7%07d","text":"Estimado cliente, su cuota %d vence el 05/12/2026."}',
      (round * size + i) % 10000000, i)
  end
  return wrk.format("POST", "/v1/messages/batch", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }, '{"messages":[' .. table.concat(items, ",") .. ']}')
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
