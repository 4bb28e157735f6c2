-- wrk script for `just load`: a paced flood of forged tokens, run beside the valid traffic.
--
--   wrk -t1 -c64 ... -s infra/load/flood.lua URL -- TOKEN_FILE RATE [THREADS]
--
-- Forgery: every valid token of TOKEN_FILE with its signature replaced by as many random
-- bytes (from /dev/urandom), base64url. The header names a key the service knows and the
-- claims are valid, so each costs the service a full RSA verification before it fails. The
-- signatures are random per token and per wrk thread, and each request also writes its own
-- sequence number over the signature's first 3 bytes, so no two forged requests carry the
-- same token (a service that remembered failures could not answer a repeat cheaply).
--
-- Pacing (wrk has no rate option): RATE requests per second for the whole run, shared by
-- THREADS threads (pass wrk's -t; default 1). Each thread hands out send times on a fixed
-- schedule, one slot every THREADS / RATE seconds, and delay() holds each request until its
-- slot, so the rate does not depend on how fast the service answers as long as enough
-- connections are open. A thread that fell behind catches up for at most CATCH_UP_MS.
--
-- Answers are counted by status; done() prints one line, "flood statuses: 401=N 503=M".

local ffi = require("ffi")
ffi.cdef [[
  struct flood_timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clock, struct flood_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local CATCH_UP_MS = 50
local timespec = ffi.new("struct flood_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1e3 + tonumber(timespec.tv_nsec) / 1e6
end

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local DIGITS = {}
for i = 1, 64 do DIGITS[i - 1] = ALPHABET:sub(i, i) end

-- Unpadded base64url, as in a JWS.
local function base64url(bytes)
  local out = {}
  for i = 1, #bytes, 3 do
    local a, b, c = bytes:byte(i, i + 2)
    local group = a * 65536 + (b or 0) * 256 + (c or 0)
    for j = 0, math.min(3, #bytes - i + 1) do
      out[#out + 1] = DIGITS[math.floor(group / 2 ^ (18 - 6 * j)) % 64]
    end
  end
  return table.concat(out)
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

-- Each forged request in two parts, split where the signature begins: the request is
-- before .. 4 characters (a sequence number, 24 bits) .. after.
local befores, afters = {}, {}
local next_index = 0
local sequence = 0
local interval_ms
local next_slot

function init(args)
  local path = args[1] or error("flood.lua: pass the token file and the rate after --")
  local rate = tonumber(args[2]) or error("flood.lua: the rate (requests/s) is not a number")
  interval_ms = 1000 * (tonumber(args[3]) or 1) / rate
  local random = assert(io.open("/dev/urandom", "rb"))
  for token in io.lines(path) do
    local signed, signature = token:match("^(.+)%.([^.]+)$")
    if signed then
      -- As many bytes as the real signature: a shorter one would be refused before any
      -- RSA work is done.
      local forged = base64url(random:read(math.floor(#signature * 6 / 8)))
      local headers = {}
      for name, value in pairs(wrk.headers) do headers[name] = value end
      headers["Authorization"] = "Bearer " .. signed .. "." .. forged
      local request = wrk.format(nil, nil, headers)
      local at = request:find(signed .. "." .. forged, 1, true) + #signed + 1
      befores[#befores + 1] = request:sub(1, at - 1)
      afters[#afters + 1] = request:sub(at + 4)
    end
  end
  random:close()
  if #befores == 0 then error("flood.lua: no token in " .. path) end
  statuses = {}
end

function request()
  next_index = next_index % #befores + 1
  sequence = (sequence + 1) % 16777216
  local n = sequence
  return befores[next_index] .. DIGITS[math.floor(n / 262144)] .. DIGITS[math.floor(n / 4096) % 64]
    .. DIGITS[math.floor(n / 64) % 64] .. DIGITS[n % 64] .. afters[next_index]
end

function delay()
  local now = now_ms()
  next_slot = math.max((next_slot or now) + interval_ms, now - CATCH_UP_MS)
  return math.max(0, math.floor(next_slot - now))
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done()
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local codes = {}
  for status in pairs(total) do codes[#codes + 1] = status end
  table.sort(codes)
  local parts = {}
  for _, status in ipairs(codes) do parts[#parts + 1] = status .. "=" .. total[status] end
  print("flood statuses: " .. table.concat(parts, " "))
end
