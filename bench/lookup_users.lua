-- wrk script for bench/queries.py: GETs <prefix><n><suffix> with a random n in [lo, hi] per request (the same
-- pseudo-random sequence for a given seed, so the ceiling and scimledger look up the same users), sends
-- exactly `quota` requests per thread and, once all of them are answered, stops the thread and prints "DONE"
-- (bench/queries.py then sends wrk SIGINT). A 2xx whose body lacks `expect` counts as failed. At the end it
-- prints one line "BENCH {json}" with the counts and latency percentiles (microseconds), like post_users.lua
-- ("created" counts the 2xx responses that held `expect`).
-- Usage: wrk ... -s lookup_users.lua URL -- <quota per thread> <lo> <hi> <seed> <prefix> <suffix> <expect>
--        [bearer token]

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[1])
  lo, hi = tonumber(args[2]), tonumber(args[3])
  math.randomseed(tonumber(args[4]) + 7919 * tid)
  prefix, suffix, expect = args[5], args[6], args[7]
  if args[8] then
    wrk.headers["Authorization"] = "Bearer " .. args[8]
  end
  wrk.headers["Accept"] = "application/scim+json"
  -- wrk calls request() once on thread 0 before the run, to check the request it builds: not sent
  sent = tid == 0 and -1 or 0
  answered, created, failed, first_error = 0, 0, 0, ""
end

function request()
  if sent >= quota then
    return ""
  end
  sent = sent + 1
  return wrk.format("GET", prefix .. math.random(lo, hi) .. suffix)
end

function response(status, headers, body)
  answered = answered + 1
  local ok = status >= 200 and status <= 299 and string.find(body or "", expect, 1, true) ~= nil
  if ok then
    created = created + 1
  else
    failed = failed + 1
    if first_error == "" then
      first_error = status .. " " .. string.sub(body or "", 1, 200):gsub('[%c"\\]', " ")
    end
  end
  if answered == quota then
    wrk.thread:stop()
    io.write("DONE\n")
    io.flush()
  end
end

function done(summary, latency, requests)
  local sent_, answered_, created_, failed_, first_error_ = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    sent_ = sent_ + t:get("sent")
    answered_ = answered_ + t:get("answered")
    created_ = created_ + t:get("created")
    failed_ = failed_ + t:get("failed")
    if first_error_ == "" then
      first_error_ = t:get("first_error")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"sent":%d,"answered":%d,"created":%d,"non_2xx":%d,"socket_errors":%d,"timeouts":%d,'
      .. '"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"first_error":"%s"}\n',
    sent_, answered_, created_, failed_, e.connect + e.read + e.write, e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    first_error_))
end
