"""Pass the current request id on to the services this one calls."""

import httpx
import urllib3

from dockerflow_wsgi.propagation import (
    add_request_id_header,
    async_add_request_id_header,
    request_id_headers,
    request_id_session,
)

# 1. httpx: a request event hook adds the header to every call of the client.
client = httpx.Client(event_hooks={"request": [add_request_id_header]}, timeout=5)


def fetch_profile(user_id: str, base_url: str) -> dict:
    response = client.get(f"{base_url}/profiles/{user_id}")
    response.raise_for_status()
    return response.json()


# An AsyncClient awaits its hooks: in async code (ASGI), the async twin.
async def fetch_orders(user_id: str, base_url: str) -> list:
    async with httpx.AsyncClient(
        event_hooks={"request": [async_add_request_id_header]}, timeout=5
    ) as async_client:
        response = await async_client.get(f"{base_url}/profiles/{user_id}/orders")
        response.raise_for_status()
        return response.json()


# 2. requests: a session whose adapters add the header (they take HTTPAdapter's arguments).
session = request_id_session(max_retries=3)


# 3. Any other client: the headers to send, {} outside a request.
http = urllib3.PoolManager()


def fetch_status(base_url: str) -> bytes:
    return http.request("GET", f"{base_url}/status", headers=request_id_headers()).data
