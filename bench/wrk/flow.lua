-- create -> authorize -> capture, many at once: wrk ... -s flow.lua <base> -- <api key> <threads> <tag>
-- Each answer queues the next step of its intent; a connection takes a queued step before starting a new flow.
dofile("common.lua")

local key, tag
local counter = 0
local queue = {}
flows, bad = 0, 0
local AUTHORIZE = '{"payment_method":{"type":"card_present","token":"tok_visa"}}'

function init(args)
  key, tag = args[1], args[3]
end

function request()
  counter = counter + 1
  local path, body = "/v1/payment-intents", '{"amount":5000,"currency":"EUR","description":"bench flow"}'
  local step = table.remove(queue, 1)
  if step then path, body = step[1], step[2] end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-API-Key"] = key,
    ["Idempotency-Key"] = string.format("%s-%d-%d", tag, tid, counter),
  }, body)
end

function response(status, headers, body)
  if status ~= 200 and status ~= 201 then
    bad = bad + 1
    return
  end
  local id = body:match('"id":"(pi_[%w]+)"')
  local state = body:match('"status":"([%l_]+)"')
  if state == "requires_authorization" then
    table.insert(queue, {"/v1/payment-intents/" .. id .. "/authorize", AUTHORIZE})
  elseif state == "authorized" then
    table.insert(queue, {"/v1/payment-intents/" .. id .. "/capture", "{}"})
  elseif state == "captured" then
    flows = flows + 1
  end
end
