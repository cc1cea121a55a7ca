-- POST a 1 MiB body (to /echo) on every request; the server sends it back.
-- Usage: wrk -s echo.lua http://127.0.0.1:PORT/echo

wrk.method = "POST"
wrk.body = string.rep("x", 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
