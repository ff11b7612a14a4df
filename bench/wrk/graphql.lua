-- Sends one GraphQL operation per request. Set BENCH_TOKEN (bearer token),
-- BENCH_QUERY (the document) and optionally BENCH_IDS (a file of patient ids,
-- one per line, substituted for $ID in BENCH_VARS) and BENCH_VARS (JSON).
-- With BENCH_HASH (the document's SHA-256, which the server already keeps)
-- the document is sent by that hash alone (automatic persisted queries).
local token = os.getenv("BENCH_TOKEN")
local query = os.getenv("BENCH_QUERY")
local vars = os.getenv("BENCH_VARS") or "{}"
local ids_file = os.getenv("BENCH_IDS")
local hash = os.getenv("BENCH_HASH")
local ids = {}

if ids_file and ids_file ~= "" then
  for line in io.lines(ids_file) do
    ids[#ids + 1] = line
  end
end

local function escape(s)
  return (s:gsub('\\', '\\\\'):gsub('"', '\\"'))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if token then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local document = '"query":"' .. escape(query) .. '"'
if hash and hash ~= "" then
  document = '"extensions":{"persistedQuery":{"version":1,"sha256Hash":"' .. hash .. '"}}'
end
local fixed = '{' .. document .. ',"variables":' .. vars .. '}'

request = function()
  if #ids == 0 then
    return wrk.format(nil, nil, nil, fixed)
  end
  local id = ids[math.random(#ids)]
  local body = '{' .. document .. ',"variables":' .. vars:gsub("%$ID", id) .. '}'
  return wrk.format(nil, nil, nil, body)
end

local errors = 0
response = function(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then
    errors = errors + 1
    if errors <= 3 then
      io.stderr:write("unexpected answer: " .. status .. " " .. body:sub(1, 200) .. "\n")
    end
  end
end
