-- wrk script for `just load`: each request carries the next token of a file, round robin,
-- as a fleet of callers would (each with its own token) rather than one caller repeating one.
--
--   wrk ... -s infra/load/rotate.lua URL -- TOKEN_FILE
--
-- TOKEN_FILE holds one token per line. Every request is formatted once, at start, so a
-- request costs wrk the same whatever the number of tokens: the auth-on and auth-off runs
-- use this script and the same file, and only the service differs. Each wrk thread walks
-- the whole list, starting at its own offset (spread over the list), so all tokens are in
-- use at once.

local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

-- wrk's own headers (Host, and any -H) plus this token's Authorization.
local function with_token(token)
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Authorization"] = "Bearer " .. token
  return headers
end

local requests = {}
local next_index

function init(args)
  local path = args[1] or error("rotate.lua: pass the token file after --")
  for token in io.lines(path) do
    if token ~= "" then
      requests[#requests + 1] = wrk.format(nil, nil, with_token(token))
    end
  end
  if #requests == 0 then error("rotate.lua: no token in " .. path) end
  -- setup() runs just before each thread's init(), so the thread count is not known here:
  -- golden-ratio offsets spread any number of threads over the list (0 and 0.62 for two).
  local golden = (thread_index or 0) * 0.6180339887
  next_index = math.floor((golden - math.floor(golden)) * #requests)
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
