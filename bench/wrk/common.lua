-- Shared by the wrk scripts of bench/side_by_side.py: thread numbering and one JSON line of results.
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then table.insert(lines, line) end
  end
  return lines
end

function done(summary, latency, requests)
  local flows, bad = 0, 0
  for _, thread in ipairs(threads) do
    flows = flows + (thread:get("flows") or 0)
    bad = bad + (thread:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"flows":%d,"bad":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout, flows, bad))
end
