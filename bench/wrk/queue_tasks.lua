-- POST /2/projects/{WRK_PROJECT}/tasks: one IronWorker task of code WRK_CODE per request.
local common = dofile(os.getenv("WRK_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.path = "/2/projects/" .. os.getenv("WRK_PROJECT") .. "/tasks"
wrk.headers = common.headers()
wrk.body = '{"tasks": [{"code_name": "' .. os.getenv("WRK_CODE") .. '", "payload": "{\\"n\\": 1}"}]}'
common.install()
