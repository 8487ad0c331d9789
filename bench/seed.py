"""Fill a running Pregonero with N messages through the batch API (10,000 a request)."""
import json
import os
import sys
import urllib.request

base, key, total = sys.argv[1], os.environ["PREGONERO_KEY"], int(sys.argv[2])
statuses = {}
sent = 0
while sent < total:
    size = min(10_000, total - sent)
    messages = [
        {"to": "7%07d" % ((sent + i) % 10_000_000), "text": "Cuota %d vence el 05/12/2026." % (sent + i)}
        for i in range(size)
    ]
    request = urllib.request.Request(
        base + "/v1/messages/batch",
        data=json.dumps({"messages": messages}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + key},
    )
    with urllib.request.urlopen(request) as answer:
        body = json.load(answer)
    if body["accepted"] != size:
        sys.exit("batch rejected items: %r" % body["items"][:3])
    sent += size
print("seeded", sent)
