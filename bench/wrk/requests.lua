-- One kind of request per run:  wrk ... -s requests.lua <base> -- <mode> <api key> <threads> <tag> [<arg>]
--   ref_create | ref_contract | ref_get <id> | create | get <intent id> | authorize <first n> | capture <first n>
--   | list <path and query> | health <ids file> | progress <ids file> <first energy_wh>
-- <tag> makes Idempotency-Keys and readings unique to this run.
dofile("common.lua")

local mode, key, nthreads, tag, arg5, arg6
local counter = 0
local ids
local started = os.time()
local AUTHORIZE = '{"payment_method":{"type":"card_present","token":"tok_visa"}}'

function init(args)
  mode, key, nthreads, tag, arg5, arg6 = args[1], args[2], tonumber(args[3]), args[4], args[5], args[6]
  if mode == "health" or mode == "progress" then
    -- every thread gets its own slice, so that no two threads report for the same object
    local all, mine = read_lines(arg5), {}
    for i, id in ipairs(all) do
      if (i - 1) % nthreads == tid then table.insert(mine, id) end
    end
    ids = mine
  end
end

local function post(path, body)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-API-Key"] = key,
    ["Idempotency-Key"] = string.format("%s-%d-%d", tag, tid, counter),
  }, body)
end

local function get(path)
  return wrk.format("GET", path, {["X-API-Key"] = key})
end

local function intent(n)
  return string.format("pi_bench%019d", n)
end

function request()
  counter = counter + 1
  if mode == "ref_create" then
    return wrk.format("POST", "/items", {["Content-Type"] = "application/json"}, '{"amount":5000,"currency":"EUR"}')
  elseif mode == "ref_contract" then
    return wrk.format("POST", "/items/contract", {
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = string.format("%s-%d-%d", tag, tid, counter),
    }, '{"amount":5000,"currency":"EUR"}')
  elseif mode == "ref_get" then
    return wrk.format("GET", "/items/" .. arg5)
  elseif mode == "create" then
    return post("/v1/payment-intents", '{"amount":5000,"currency":"EUR","description":"bench"}')
  elseif mode == "get" then
    return get("/v1/payment-intents/" .. arg5)
  elseif mode == "authorize" then
    return post("/v1/payment-intents/" .. intent(tonumber(arg5) + tid + nthreads * (counter - 1)) .. "/authorize",
                AUTHORIZE)
  elseif mode == "capture" then
    return post("/v1/payment-intents/" .. intent(tonumber(arg5) + tid + nthreads * (counter - 1)) .. "/capture",
                "{}")
  elseif mode == "list" then
    return get(arg5)
  elseif mode == "health" then
    local id = ids[(counter - 1) % #ids + 1]
    return post("/v1/terminals/" .. id .. "/health-events", string.format(
      '{"type":"heartbeat","occurred_at":"%s","metrics":{"signal_strength_dbm":-67,"temperature_c":38.5}}',
      os.date("!%Y-%m-%dT%H:%M:%SZ")))
  elseif mode == "progress" then
    -- readings strictly newer and larger each time: the run's start second plus one microsecond per request
    local id = ids[(counter - 1) % #ids + 1]
    local body = string.format('{"energy_wh":%d,"measured_at":"%s.%06dZ","power_kw":"22.0"}',
      tonumber(arg6 or "0") + counter, os.date("!%Y-%m-%dT%H:%M:%S", started), counter)
    return wrk.format("PUT", "/v1/adhoc-charges/" .. id .. "/progress", {
      ["Content-Type"] = "application/json", ["X-API-Key"] = key}, body)
  end
end
