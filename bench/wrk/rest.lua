-- GET /api/patients/<id> with a random id of BENCH_IDS (a file of patient
-- ids, one per line) and the bearer token BENCH_TOKEN.
local token = os.getenv("BENCH_TOKEN")
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do
  ids[#ids + 1] = line
end

wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. token

request = function()
  return wrk.format(nil, "/api/patients/" .. ids[math.random(#ids)])
end

local errors = 0
response = function(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors <= 3 then
      io.stderr:write("unexpected answer: " .. status .. " " .. body:sub(1, 200) .. "\n")
    end
  end
end
