-- Pipelined GETs: each write carries DEPTH copies of the request (default 16).
-- wrk counts every response, so Requests/sec is responses per second.
-- Usage: wrk -s pipeline.lua http://127.0.0.1:PORT/World -- 16

local depth = 16

init = function(args)
  depth = tonumber(args[1]) or depth
  local batch = {}
  for i = 1, depth do
    batch[i] = wrk.format()
  end
  req = table.concat(batch)
end

request = function()
  return req
end
