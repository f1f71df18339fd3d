"""RSS before and after N pass-through requests in one process: ``python memory.py N``.

Prints one JSON object. Run in its own process so nothing else grows the heap.
"""

from __future__ import annotations

import gc
import json
import sys

from bench import SummaryLog, environ_for, hello_app, one_request

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.logging import JsonLogFormatter


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(requests: int) -> None:
    log = SummaryLog()
    log.use(JsonLogFormatter(logger_name="bench"))
    app = DockerflowMiddleware(hello_app)
    template = environ_for("/")
    for _ in range(20_000):  # warm up: caches, interned strings, allocator arenas
        one_request(app, template)
    gc.collect()
    before = rss_kib()
    for _ in range(requests):
        one_request(app, template)
    gc.collect()
    after = rss_kib()
    print(json.dumps({"requests": requests, "rss_before_kib": before, "rss_after_kib": after}))
    log.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
