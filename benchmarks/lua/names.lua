-- GETs of /n<i>, i counting up to COUNT (default 100000) and then over again: every request
-- names another path, so nothing a server remembers per path is found again.
-- Usage: wrk -s names.lua http://127.0.0.1:PORT/World -- 100000

local count = 100000
local i = 0

init = function(args)
  count = tonumber(args[1]) or count
end

request = function()
  i = i + 1
  if i > count then
    i = 1
  end
  return wrk.format(nil, "/n" .. i)
end
