-- POST /3/projects/{WRK_PROJECT}/queues/{WRK_QUEUE}/messages with WRK_BATCH messages
-- (default 1) of WRK_BODY_BYTES bytes (default 100) each: a durable IronMQ post.
local common = dofile(os.getenv("WRK_DIR") .. "/common.lua")

local batch = tonumber(os.getenv("WRK_BATCH") or "1")
local size = tonumber(os.getenv("WRK_BODY_BYTES") or "100")
local item = '{"body": "' .. string.rep("x", size) .. '"}'
local items = {}
for i = 1, batch do items[i] = item end

wrk.method = "POST"
wrk.path = "/3/projects/" .. os.getenv("WRK_PROJECT") .. "/queues/" .. os.getenv("WRK_QUEUE") .. "/messages"
wrk.headers = common.headers()
wrk.body = '{"messages": [' .. table.concat(items, ", ") .. ']}'
common.install()
