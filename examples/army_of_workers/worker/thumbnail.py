"""One unit of work per task: reads its payload, pretends to make a thumbnail."""

import json
import os
import time

with open(os.environ["PAYLOAD_FILE"]) as f:
    payload = json.load(f)
time.sleep(0.05)  # the work
out = os.path.join(os.environ["TASK_DIR"], "thumb.txt")
with open(out, "w") as f:
    f.write(f"thumbnail of image {payload['image_id']}\n")
print(f"image {payload['image_id']}: done in task {os.environ['TASK_ID']}")
