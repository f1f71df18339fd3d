"""Instructions per request, counted by callgrind: the figures of ``make bench`` that do not move
with the machine's load (timings on these shared machines move by 10-30 % between runs).

Each scenario serves N requests in a fresh interpreter under ``valgrind --tool=callgrind``; its
figure is (instructions for 1000 requests - for 0) / 1000, so start-up cancels out. WSGI
scenarios call the stack directly with a copy of a prepared environ, iterate and close the
body, as ``../shared/tools/instructions.py`` does; ASGI scenarios make raw ASGI calls on one
event loop. Every summary goes through its library's own formatter into a null stream.

    python benchmarks/instructions.py                 # every scenario, one JSON object
    python benchmarks/instructions.py ours lb         # some of them
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

WSGIApp = Callable[[dict, Callable[..., Any]], Any]


def environ_for(path: str, **extra: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost:8000",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_ACCEPT_LANGUAGE": "en",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **extra,
    }


def start_response(status: str, headers: list, exc_info: Any = None) -> None:
    return None


def null_logging(formatter: logging.Formatter, name: str = "request.summary") -> None:
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - the process's
    handler.setFormatter(formatter)
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def hello(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def floor() -> WSGIApp:
    """The hello app writing the summary's mozlog line itself: a dict, orjson, write, flush.
    The least a logged request can cost."""
    import orjson

    stream = open(os.devnull, "w")  # noqa: SIM115 - the process's
    hostname, pid = socket.gethostname(), os.getpid()

    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        started = time.perf_counter()
        body = hello(environ, start_response)
        fields = {
            "agent": environ.get("HTTP_USER_AGENT", ""),
            "lang": environ.get("HTTP_ACCEPT_LANGUAGE", ""),
            "method": environ["REQUEST_METHOD"],
            "path": environ["PATH_INFO"],
            "code": 200,
            "errno": 0,
            "t": int((time.perf_counter() - started) * 1000),
            "rid": "",
            "uid": "",
        }
        envelope = {
            "Timestamp": time.time_ns(),
            "Type": "request.summary",
            "Logger": "bench",
            "Hostname": hostname,
            "EnvVersion": "2.0",
            "Severity": 6,
            "Pid": pid,
            "Fields": fields,
        }
        stream.write(orjson.dumps(envelope).decode() + "\n")
        stream.flush()
        return body

    return app


def essentials() -> WSGIApp:
    """The floor plus only what any middleware keeping this library's promises must add, in
    one function with no layers: the request id (a client's validated, else a new one) in the
    environ and current while the app runs, echoed unless the app set it, a response object
    whose close() writes the summary (the code, the duration, every field bounded and a URL's
    password masked), and logging's configuration read at each line (the logger's level,
    every handler it reaches plain, the handler's lock held). Not a product: the lower bound
    the middleware is measured against, beyond which only a promise could be given up.
    """
    import orjson

    from dockerflow_wsgi.logging import JsonLogFormatter
    from dockerflow_wsgi.pep3333 import STATUS_CODES, status_code
    from dockerflow_wsgi.redact import mask_secrets
    from dockerflow_wsgi.request_id import accept_request_id, generate_request_id, request_id_var
    from dockerflow_wsgi.summary import MAX_CLIENT_FIELD_LENGTH, clip

    null_logging(JsonLogFormatter(logger_name="bench"))
    logger = logging.getLogger("request.summary")
    levels = logger._cache  # isEnabledFor's answers, as the summary reads them
    middle = (
        f',"Type":"request.summary","Logger":"bench","Hostname":'
        f'{json.dumps(socket.gethostname())},"EnvVersion":"2.0","Severity":6,'
        f'"Pid":{os.getpid()},"Fields":'
    )

    class Response(list):  # type: ignore[type-arg]
        __slots__ = ("environ", "request_id", "server_start_response", "started", "status")

        def start_response(self, status: str, headers: list, exc_info: Any = None) -> Any:
            self.status = status
            for name, _ in headers:
                if len(name) == 12 and name.lower() == "x-request-id":
                    break
            else:
                headers = [*headers, ("X-Request-ID", self.request_id)]
            return self.server_start_response(status, headers, exc_info)

        def close(self) -> None:
            environ = self.environ
            try:
                enabled = levels[logging.INFO]
            except KeyError:
                enabled = logger.isEnabledFor(logging.INFO)
            if not enabled or logger.disabled or logger.filters:
                return
            if logging.getLogRecordFactory() is not logging.LogRecord:
                return
            handlers = []
            current = logger
            while current is not None:
                for handler in current.handlers:
                    if handler.level > logging.INFO:
                        continue
                    if type(handler) is not logging.StreamHandler or handler.filters:
                        return
                    if type(handler.formatter) is not JsonLogFormatter:
                        return
                    handlers.append(handler)
                current = current.parent if current.propagate else None
            if not handlers:
                return
            code = STATUS_CODES.get(self.status) or status_code(self.status)
            agent = environ.get("HTTP_USER_AGENT", "")
            lang = environ.get("HTTP_ACCEPT_LANGUAGE", "")
            method = environ.get("REQUEST_METHOD", "")
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            uid = environ.get("dockerflow.user_id") or environ.get("REMOTE_USER") or ""
            if "@" in path:
                path = mask_secrets(path)
            if len(agent) + len(lang) + len(method) + len(path) + len(uid) > (
                MAX_CLIENT_FIELD_LENGTH
            ):
                agent, lang, method, path, uid = map(clip, (agent, lang, method, path, uid))
            fields = {
                "agent": agent,
                "lang": lang,
                "method": method,
                "path": path,
                "code": code,
                "errno": code if code >= 400 else 0,
                "t": int((time.perf_counter() - self.started) * 1000),
                "rid": self.request_id,
                "uid": uid,
            }
            line = f'{{"Timestamp":{time.time_ns()}{middle}{orjson.dumps(fields).decode()}}}\n'
            for handler in handlers:
                lock = handler.lock
                lock.acquire()
                try:
                    handler.stream.write(line)
                    handler.stream.flush()
                finally:
                    lock.release()

    def app(environ: dict, start_response: Callable[..., Any]) -> Response:
        sent = environ.get("HTTP_X_REQUEST_ID")
        request_id = generate_request_id() if sent is None else accept_request_id(sent)
        environ["dockerflow.request_id"] = request_id
        response = Response()
        response.environ = environ
        response.server_start_response = start_response
        response.request_id = request_id
        response.status = None
        response.started = time.perf_counter()
        token = request_id_var.set(request_id)
        try:
            response += hello(environ, response.start_response)
        finally:
            request_id_var.reset(token)
        return response

    return app


def flask_hello() -> Any:
    import flask

    app = flask.Flask("bench")

    @app.route("/")
    def index() -> str:
        return "hello"

    return app


def ours(**options: Any) -> WSGIApp:
    from dockerflow_wsgi import DockerflowMiddleware
    from dockerflow_wsgi.logging import JsonLogFormatter

    null_logging(JsonLogFormatter(logger_name="bench"))
    return DockerflowMiddleware(hello, checks=[], **options)


def with_opentelemetry_imported(build: Callable[[], WSGIApp]) -> WSGIApp:
    """``build()`` in a process that imported OpenTelemetry's API and set no tracer provider
    (a library of the service's imports it; nothing traces): every request looks for a span."""
    import opentelemetry.trace  # noqa: F401 - imported for the middleware to find

    return build()


def without_orjson(build: Callable[[], WSGIApp]) -> WSGIApp:
    """``build()`` in a process where ``import orjson`` fails, as in a service installed
    without the ``orjson`` extra: the summary goes through the stdlib ``json`` encoder."""
    sys.modules["orjson"] = None  # type: ignore[assignment] - makes the import raise
    return build()


def trivial_check() -> list:
    return []


def ours_with_check(**options: Any) -> WSGIApp:
    from dockerflow_wsgi import DockerflowMiddleware
    from dockerflow_wsgi.logging import JsonLogFormatter

    null_logging(JsonLogFormatter(logger_name="bench"))
    return DockerflowMiddleware(hello, checks=[("trivial", trivial_check)], **options)


def flask_ours() -> WSGIApp:
    from dockerflow_wsgi.flask import Dockerflow
    from dockerflow_wsgi.logging import JsonLogFormatter

    null_logging(JsonLogFormatter(logger_name="bench"))
    app = flask_hello()
    Dockerflow(app, checks=[])
    return app


def flask_theirs(with_check: bool = False) -> WSGIApp:
    from dockerflow.flask import Dockerflow
    from dockerflow.logging import JsonLogFormatter

    null_logging(JsonLogFormatter(logger_name="bench"))
    app = flask_hello()
    extension = Dockerflow(app)
    if with_check:
        extension.check(trivial_check, name="trivial")
    return app


# name: (what it measures, how to build its WSGI app, path, extra environ)
WSGI_SCENARIOS: dict[str, tuple[str, Callable[[], WSGIApp], str, dict[str, str]]] = {
    "bare": ("bare hello WSGI app", lambda: hello, "/", {}),
    "floor": ("bare app writing the same mozlog line itself", floor, "/", {}),
    "essentials": (
        "the floor + a middleware's bare duties, in one function",
        essentials,
        "/",
        {},
    ),
    "ours": ("bare app + DockerflowMiddleware", ours, "/", {}),
    "ours_stdlib_json": (
        "bare app + DockerflowMiddleware, stdlib json (no orjson extra)",
        lambda: without_orjson(ours),
        "/",
        {},
    ),
    "ours_otel": (
        "+ OpenTelemetry's API imported, no tracer provider",
        lambda: with_opentelemetry_imported(ours),
        "/",
        {},
    ),
    "lb": ("/__lbheartbeat__ with its summary", ours, "/__lbheartbeat__", {}),
    "lb_quiet": (
        "/__lbheartbeat__, log_probes off",
        lambda: ours(log_probes=False),
        "/__lbheartbeat__",
        {},
    ),
    "metrics": ("+ metrics on", lambda: ours(metrics=True), "/", {}),
    "groups": (
        "+ heartbeat_groups (pass-through)",
        lambda: ours(heartbeat_groups="readiness=a,b;startup=c"),
        "/",
        {},
    ),
    "traceparent": ("+ a valid traceparent header", ours, "/", {"HTTP_TRACEPARENT": TRACEPARENT}),
    "interval": (
        "+ heartbeat_interval (pass-through)",
        lambda: ours(heartbeat_interval=3600),
        "/",
        {},
    ),
    "hb_background": (
        "/__heartbeat__ from a background run",
        lambda: ours_with_check(heartbeat_interval=3600),
        "/__heartbeat__",
        {},
    ),
    "hb_ours": (
        "/__heartbeat__ on demand, 1 trivial check",
        lambda: ours_with_check(),
        "/__heartbeat__",
        {},
    ),
    "hb_theirs": (
        "/__heartbeat__, the dockerflow package's extension, 1 trivial check",
        lambda: flask_theirs(with_check=True),
        "/__heartbeat__",
        {},
    ),
    "flask": ("Flask hello", flask_hello, "/", {}),
    "flask_ours": ("Flask + dockerflow_wsgi.flask", flask_ours, "/", {}),
    "flask_theirs": ("Flask + the dockerflow package's extension", flask_theirs, "/", {}),
    "lb_theirs": (
        "/__lbheartbeat__, the dockerflow package's extension",
        flask_theirs,
        "/__lbheartbeat__",
        {},
    ),
}

ASGI_SCENARIOS = {
    "asgi_bare": ("FastAPI hello", "bare", "/"),
    "asgi_floor": ("FastAPI hello writing the same mozlog line itself", "own_line", "/"),
    "asgi_ours": ("FastAPI + DockerflowASGIMiddleware", "ours", "/"),
    "asgi_theirs": ("FastAPI + the dockerflow package's integration", "theirs", "/"),
}

SCENARIOS = [*WSGI_SCENARIOS, *ASGI_SCENARIOS]


def serve_wsgi(name: str, requests: int) -> None:
    _, build, path, extra = WSGI_SCENARIOS[name]
    app = build()
    base = environ_for(path, **extra)

    def serve(count: int) -> None:
        for _ in range(count):
            environ = dict(base)
            environ["wsgi.input"] = io.BytesIO(b"")
            body = app(environ, start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    serve(300)  # warm up: lazy imports, the id batch, a background run
    if name == "hb_background":
        time.sleep(0.5)
    serve(requests)


def serve_asgi(name: str, requests: int) -> None:
    """Raw ASGI calls on one loop, as ``make bench``'s in-process ASGI scenarios make them."""
    sys.path.insert(0, HERE)
    import asgi_bench
    import asgi_server_apps

    _, attribute, path = ASGI_SCENARIOS[name]
    app, scope = getattr(asgi_server_apps, attribute), asgi_bench.scope_for(path)

    async def run() -> None:
        await asgi_bench.drive(app, scope, 300)
        await asgi_bench.drive(app, scope, requests)

    asyncio.run(run())


def count(name: str, requests: int) -> int:
    finished = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--serve",
            name,
            str(requests),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", finished.stderr)
    if found is None:
        raise RuntimeError(f"{name}: callgrind gave no count\n{finished.stderr[-1500:]}")
    return int(found.group(1))


def per_request(name: str) -> float:
    """Instructions per request of scenario ``name``."""
    return (count(name, 1000) - count(name, 0)) / 1000


def label(name: str) -> str:
    return (WSGI_SCENARIOS.get(name) or ASGI_SCENARIOS[name])[0]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        name, requests = argv[1], int(argv[2])
        (serve_wsgi if name in WSGI_SCENARIOS else serve_asgi)(name, requests)
        return 0
    names = argv or SCENARIOS
    print(json.dumps({name: round(per_request(name)) for name in names}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
