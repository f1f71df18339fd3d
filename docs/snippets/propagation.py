"""Pass the current request id on to the services this one calls."""

import requests
import urllib3
from requests.adapters import HTTPAdapter

from dockerflow_wsgi import current_request_id

REQUEST_ID_HEADER = "X-Request-ID"


def request_id_headers() -> dict:
    """``{"X-Request-ID": id}`` while a request is handled, ``{}`` outside one."""
    request_id = current_request_id()
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


# 1. Explicitly, call by call.
def fetch_profile(user_id: str, base_url: str) -> dict:
    response = requests.get(
        f"{base_url}/profiles/{user_id}", headers=request_id_headers(), timeout=5
    )
    response.raise_for_status()
    return response.json()


# 2. Once for every call of a requests session: HTTPAdapter.add_headers is its hook for that.
class RequestIdAdapter(HTTPAdapter):
    def add_headers(self, request, **kwargs):
        for name, value in request_id_headers().items():
            request.headers.setdefault(name, value)


session = requests.Session()
session.mount("http://", RequestIdAdapter())
session.mount("https://", RequestIdAdapter())


# 3. With urllib3 directly.
http = urllib3.PoolManager()


def fetch_status(base_url: str) -> bytes:
    return http.request("GET", f"{base_url}/status", headers=request_id_headers()).data
