-- wrk script: replays pre-signed oidc2 requests, each exactly once, so every request carries a
-- fresh signature nonce. Script args: <file> <threads>. The file's first line is the caller's ICT,
-- then one line per request: "<Signature-Input>\t<Signature>". Thread t of n takes lines t, t+n, ...
-- When a thread runs out it sends GET /__exhausted (answered non-2xx), and done() reports how
-- many, so a run that outlasted its requests is recognised and repeated with more.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(args[2] or "1")
  local f = assert(io.open(args[1], "r"))
  local ict = f:read("*l")
  reqs = {}
  loaded = 0
  used = 0
  over = 0
  local i = 0
  for line in f:lines() do
    if i % n == tid then
      local input, sig = line:match("^([^\t]+)\t(.+)$")
      reqs[#reqs + 1] = wrk.format("GET", "/hello", {
        ["Identity-Certification-Token"] = ict,
        ["Signature-Input"] = input,
        ["Signature"] = sig,
      })
    end
    i = i + 1
  end
  f:close()
  loaded = #reqs
end

function request()
  if used < loaded then
    used = used + 1
    return reqs[used]
  end
  over = over + 1
  return wrk.format("GET", "/__exhausted")
end

function done(summary, latency, requests)
  local l, u, o = 0, 0, 0
  for _, t in ipairs(threads) do
    l = l + t:get("loaded")
    u = u + t:get("used")
    o = o + t:get("over")
  end
  io.write(string.format("presigned: loaded=%d used=%d exhausted=%d\n", l, u, o))
end
