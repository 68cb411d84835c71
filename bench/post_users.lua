-- wrk script for bench/run.py: POSTs a SCIM User with a unique userName (user-<n>@example.com) per request,
-- sends exactly `quota` requests per thread and, once all of them are answered, stops the thread and prints
-- "DONE" (wrk itself sleeps for its -d duration: bench/run.py then sends it SIGINT). At the end it prints one
-- line "BENCH {json}" with the counts and latency percentiles (microseconds).
-- Usage: wrk ... -s post_users.lua URL -- <quota per thread> <first n> [bearer token]
-- Once its quota is sent, a thread answers wrk's request() with "" so the connection sends nothing more.

local template = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
  .. '"userName":"user-%d@example.com","name":{"givenName":"Bench","familyName":"User %d"},'
  .. '"displayName":"Bench User %d","emails":[{"value":"user-%d@example.com","type":"work","primary":true}],'
  .. '"title":"Load test","preferredLanguage":"en-US","locale":"en-US","active":true}'

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[1])
  first = tonumber(args[2]) + tid * quota
  if args[3] then
    wrk.headers["Authorization"] = "Bearer " .. args[3]
  end
  wrk.headers["Content-Type"] = "application/scim+json"
  -- wrk calls request() once on thread 0 before the run, to check the request it builds: not sent
  sent = tid == 0 and -1 or 0
  answered, created, failed, first_error = 0, 0, 0, ""
end

function request()
  if sent >= quota then
    return ""
  end
  local n = first + sent
  sent = sent + 1
  return wrk.format("POST", nil, nil, string.format(template, n, n, n, n))
end

function response(status, headers, body)
  answered = answered + 1
  if status == 201 then
    created = created + 1
  end
  if status < 200 or status > 299 then
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
