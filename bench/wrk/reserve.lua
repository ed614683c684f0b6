-- POST /3/projects/{WRK_PROJECT}/queues/{WRK_QUEUE}/reservations {"n": 1}: reserve one
-- message of a queue that has plenty ready (no long poll: wait 0).
local common = dofile(os.getenv("WRK_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.path = "/3/projects/" .. os.getenv("WRK_PROJECT") .. "/queues/" .. os.getenv("WRK_QUEUE") .. "/reservations"
wrk.headers = common.headers()
wrk.body = '{"n": 1}'
common.install()
