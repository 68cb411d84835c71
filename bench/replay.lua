-- wrk script of the benchmark (bench/harness.py): sends the requests of a pool file, one line each.
-- Usage: wrk -t1 ... -s replay.lua URL -- <pool file> <cycle 0|1> <first n> [expect]
--
-- A line is tab-separated: METHOD, PATH, TOKEN (a bearer token, or empty), BODY (or empty), and optionally
-- a follow-up: KEY, METHOD, PATH, BODY. "{n}" in PATH and BODY becomes a counter that starts at <first n>
-- and grows by one per line sent (unique userNames without a pool line per user). When a 2xx response's
-- "displayName" equals a line's KEY, its follow-up is sent next with "{id}" replaced by the response's
-- "id" (a group push: POST /Groups, then PATCH its members). With <cycle> 1 the pool is sent again and
-- again until wrk's duration ends; with 0 each line once, and once all are answered the script prints
-- "DONE" (harness.py then ends wrk with SIGINT, so the summary covers the time until then).
-- Errors: a non-2xx status, or a 2xx whose body lacks <expect> when given. At the end it prints one line
-- "BENCH {json}" with the counts, the statuses and the latency percentiles (microseconds).
-- One thread only: follow-ups are matched to responses within the thread's Lua state.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

function init(args)
  pool, follow = {}, {}
  for line in io.lines(args[1]) do
    local f = split(line)
    pool[#pool + 1] = f
    if f[5] and f[5] ~= "" then
      follow[f[5]] = { f[6], f[7], f[3], f[8] or "" }
    end
  end
  cycle = args[2] == "1"
  n = tonumber(args[3])
  expect = args[4] or ""
  nxt, queue = 1, {}
  -- wrk calls request() once before the run to check the request it builds: that one is not sent
  checked = false
  sent, answered, ok, failed, first_error, exhausted = 0, 0, 0, 0, "", 0
  statuses = {}
end

local function build(method, path, token, body)
  local headers = { ["Accept"] = "application/scim+json" }
  if token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  if body ~= "" then
    headers["Content-Type"] = "application/scim+json"
  else
    body = nil
  end
  return wrk.format(method, path, headers, body)
end

function request()
  if not checked then
    checked = true
    local f = pool[1]
    return build(f[1], f[2], f[3], f[4])
  end
  if #queue > 0 then
    local q = table.remove(queue, 1)
    sent = sent + 1
    return build(q[1], q[2], q[3], q[4])
  end
  if nxt > #pool then
    if not cycle then
      exhausted = 1
      return ""
    end
    nxt = 1
  end
  local f = pool[nxt]
  nxt = nxt + 1
  sent = sent + 1
  local path, body = f[2], f[4]
  if path:find("{n}", 1, true) or body:find("{n}", 1, true) then
    path, body = path:gsub("{n}", n), body:gsub("{n}", n)
    n = n + 1
  end
  return build(f[1], path, f[3], body)
end

function response(status, headers, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  local good = status >= 200 and status <= 299
  if good and expect ~= "" and not string.find(body or "", expect, 1, true) then
    good = false
  end
  if good then
    ok = ok + 1
    if status == 201 and next(follow) ~= nil then
      local name = string.match(body, '"displayName"%s*:%s*"([^"]*)"')
      local f = name and follow[name]
      if f then
        local id = string.match(body, '"id"%s*:%s*"([^"]*)"') or ""
        queue[#queue + 1] = { f[1], (f[2]:gsub("{id}", id)), f[3], (f[4]:gsub("{id}", id)) }
      end
    end
  else
    failed = failed + 1
    if first_error == "" then
      first_error = status .. " " .. string.sub(body or "", 1, 200):gsub('[%c"\\]', " ")
    end
  end
  if not cycle and nxt > #pool and #queue == 0 and answered == sent then
    wrk.thread:stop()
    io.write("DONE\n")
    io.flush()
  end
end

function done(summary, latency, requests)
  local t = threads[1]
  local parts = {}
  for status, count in pairs(t:get("statuses")) do
    parts[#parts + 1] = string.format('"%d":%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"sent":%d,"answered":%d,"ok":%d,"failed":%d,"socket_errors":%d,"timeouts":%d,'
      .. '"exhausted":%s,"statuses":{%s},"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"first_error":"%s"}\n',
    t:get("sent"), t:get("answered"), t:get("ok"), t:get("failed"), e.connect + e.read + e.write,
    e.timeout, t:get("exhausted") == 1 and "true" or "false", table.concat(parts, ","),
    summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    t:get("first_error")))
end
