-- wrk script: replays pre-signed oidc2 requests with bodies (bench/lib/e2ee-http.mjs), each exactly
-- once, like bench/presigned.lua. Script args: <file> <threads>. The file (binary-safe):
--   "<METHOD> <path>\n", then the fields every request carries, one "<name>: <value>\n" each, then
--   "\n"; then per request "<body length>\t<Signature-Input>\t<Signature>\t<Content-Digest>\n"
--   followed by exactly that many octets of body (plaintext, or an aes128gcm-encrypted one).
-- Thread t of n takes requests t, t+n, ... When a thread runs out it sends GET /__exhausted
-- (answered non-2xx), and done() reports how many, so a run that outlasted its requests is
-- recognised and repeated with more.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(args[2] or "1")
  local f = assert(io.open(args[1], "rb"))
  local method, path = f:read("*l"):match("^(%S+) (%S+)$")
  local fixed = {}
  while true do
    local line = f:read("*l")
    if line == nil or line == "" then break end
    local name, value = line:match("^([^:]+): (.*)$")
    fixed[name] = value
  end
  reqs = {}
  loaded = 0
  used = 0
  over = 0
  local i = 0
  while true do
    local line = f:read("*l")
    if line == nil then break end
    local len, input, sig, digest = line:match("^(%d+)\t([^\t]+)\t([^\t]+)\t(.*)$")
    local body = f:read(tonumber(len))
    if i % n == tid then
      local headers = {}
      for k, v in pairs(fixed) do headers[k] = v end
      headers["Signature-Input"] = input
      headers["Signature"] = sig
      headers["Content-Digest"] = digest
      reqs[#reqs + 1] = wrk.format(method, path, headers, body)
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
