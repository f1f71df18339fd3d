"""Checks of an ASGI service. ``async def`` checks are awaited on the server's event loop; the
others run on the middleware's threads, never on the loop's."""

import os
import socket

import httpx

from dockerflow_wsgi import checks


@checks.register
async def search_api():
    # On the event loop that serves every request: awaitable calls only, nothing that blocks.
    url = os.environ.get("SEARCH_API_URL", "http://search:8000/__lbheartbeat__")
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(url)
    except httpx.HTTPError as error:
        return [checks.Error(f"cannot reach the search API: {error!r}", id="myservice.E001")]
    if response.status_code != 200:
        return [
            checks.Warning(f"the search API answers {response.status_code}", id="myservice.W001")
        ]
    return []


@checks.register
def memcached():
    # On a thread of the middleware: a blocking client is fine here.
    host, _, port = os.environ.get("MEMCACHED_ADDRESS", "memcached:11211").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as error:
        return [checks.Error(f"cannot connect to memcached: {error}", id="myservice.E002")]
    return []
