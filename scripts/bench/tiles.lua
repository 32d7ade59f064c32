-- wrk script for scripts/bench/tiles: sends the requests listed in the file $TILES_REQUESTS
-- in turn, each line `PATH` or `PATH<TAB>Header: value<TAB>Header: value…`. Each thread starts
-- at its own place in the list. With $TILES_LIMIT set, each thread stops after that many
-- answers. At the end it prints one line for the benchmark script to read:
-- `RESULT <requests/s> <p50 ms> <p99 ms> <requests> <errors>` (errors: socket errors,
-- timeouts and answers with a status of 400 or more).

local requests = {}
local next_index = 1
local limit = tonumber(os.getenv("TILES_LIMIT") or "0")
local answered = 0

-- Runs in the main state once per thread, before the threads start.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  for line in io.lines(os.getenv("TILES_REQUESTS")) do
    local fields = {}
    for field in line:gmatch("[^\t]+") do
      fields[#fields + 1] = field
    end
    local headers = {}
    for i = 2, #fields do
      local name, value = fields[i]:match("^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    requests[#requests + 1] = wrk.format("GET", fields[1], headers)
  end
  if #requests == 0 then
    error("no requests in " .. os.getenv("TILES_REQUESTS"))
  end
  -- Threads start far apart in the list, so they do not ask for the same tile together.
  next_index = ((thread_number or 1) - 1) * 37 % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

if limit > 0 then
  function response(status, headers, body)
    answered = answered + 1
    if answered >= limit then
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n",
    summary.requests / summary.duration * 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.connect + e.read + e.write + e.timeout + e.status))
end
