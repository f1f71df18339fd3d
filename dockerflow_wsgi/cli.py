"""The ``dockerflow-wsgi`` command: health probes, ``version.json`` and configuration checks.

.. code-block:: text

    dockerflow-wsgi heartbeat --app myproject.wsgi:application   # Docker HEALTHCHECK, exec probes
    dockerflow-wsgi version-json --output version.json           # in the image's build step
    dockerflow-wsgi check-config                                 # before a deploy, or at start

Exit status: 0 success (healthy), 1 failure (unhealthy, no commit found), 2 a usage or
configuration error. Errors are one line on stderr, never a traceback, and no output of this
command contains a password from a URL.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import importlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Callable, Optional
from urllib.parse import urlsplit, urlunsplit

from . import __version__
from .checks import ERROR, CheckResults, level_to_text
from .config import Config
from .middleware import DockerflowMiddleware
from .redact import mask_url

__all__ = ["main"]

PROG = "dockerflow-wsgi"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure reported as one line on stderr, ending the command with ``status``."""

    def __init__(self, message: str, status: int) -> None:
        # Exception texts from an application or a driver may quote a connection URL.
        super().__init__(mask_url(message))
        self.status = status


# -- the application and its middleware --------------------------------------------------------

# Attributes under which WSGI wrappers keep what they wrap: Flask's app.wsgi_app, and the
# ``app`` / ``application`` of most middleware (ours, werkzeug's ProxyFix, whitenoise...).
_WRAPPED_ATTRIBUTES = ("wsgi_app", "app", "application")
_WRAPPER_DEPTH = 4


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` the way gunicorn does, from the current directory.

    The attribute defaults to ``application``, may be dotted, and may end in ``()`` to call an
    application factory without arguments (``myapp:create_app()``).

    :raises CommandError: (exit status 2) for anything that keeps the object from loading.
    """
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "application"
    factory = attribute.endswith("()")
    path = attribute[:-2] if factory else attribute
    if not all(part.isidentifier() for part in [*module_name.split("."), *path.split(".")]):
        raise CommandError(
            f"--app {spec!r} is not of the form module:attribute (e.g. myproject.wsgi:application)",
            EXIT_USAGE,
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        found: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        raise CommandError(f"cannot import {module_name!r}: {_describe(exc)}", EXIT_USAGE) from None
    for name in path.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise CommandError(
                f"module {module_name!r} has no attribute {path!r}", EXIT_USAGE
            ) from None
    if factory:
        try:
            found = found()
        except (Exception, SystemExit) as exc:
            raise CommandError(
                f"{module_name}:{attribute} raised {_describe(exc)}", EXIT_USAGE
            ) from None
    if not callable(found):
        raise CommandError(
            f"{spec} is a {type(found).__name__}, not a WSGI application", EXIT_USAGE
        )
    return found


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _getattr(obj: Any, name: str) -> Any:
    # Arbitrary objects (proxies, lazy settings) may raise anything from attribute access.
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _wrapped_by(obj: Any) -> Iterator[Any]:
    extensions = _getattr(obj, "extensions")
    if isinstance(extensions, Mapping):
        # Our Flask shim, also when app.wsgi_app was wrapped again after it.
        yield _getattr(extensions.get("dockerflow"), "middleware")
    for name in _WRAPPED_ATTRIBUTES:
        yield _getattr(obj, name)


def find_middleware(app: Any) -> Optional[DockerflowMiddleware]:
    """The :class:`DockerflowMiddleware` that is ``app`` or that ``app`` wraps, if any.

    Looks breadth-first through a few layers of wrappers, so the outermost middleware wins,
    as it is the one that answers the Dockerflow paths.
    """
    seen: set[int] = set()
    layer = [app]
    for _ in range(_WRAPPER_DEPTH + 1):
        below: list[Any] = []
        for obj in layer:
            if obj is None or id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, DockerflowMiddleware):
                return obj
            below.extend(_wrapped_by(obj))
        layer = below
    return None


def _not_served(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The application of a middleware built only for its configuration and checks."""
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"Not Found"]


def _middleware(app_spec: Optional[str]) -> DockerflowMiddleware:
    """The application's middleware, or one built from the environment.

    Importing the application first also registers the checks its modules declare, which a
    middleware built here then runs.
    """
    if app_spec is not None:
        found = find_middleware(load_app(app_spec))
        if found is not None:
            return found
    try:
        return DockerflowMiddleware(_not_served)
    except ValueError as exc:
        raise CommandError(f"invalid configuration: {exc}", EXIT_USAGE) from None


@contextlib.contextmanager
def _application_context(verbose: bool) -> Iterator[None]:
    """Keep stdout for our output and decide where log records go.

    The application's prints and stdout log handlers (set up while it is imported) land on
    stderr, so ``--json`` stays parseable. Log records are dropped unless ``verbose``: a probe's
    output should be its verdict, and the messages already say what failed.
    """
    with contextlib.redirect_stdout(sys.stderr), _log_records(verbose):
        yield


@contextlib.contextmanager
def _log_records(verbose: bool) -> Iterator[None]:
    if not verbose:
        previous_disable = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(previous_disable)
        return
    logger = logging.getLogger("dockerflow_wsgi")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


# -- heartbeat ---------------------------------------------------------------------------------


def heartbeat_body(results: CheckResults) -> dict[str, Any]:
    """The ``/__heartbeat__`` JSON body, always with ``checks`` and ``details``.

    ``heartbeat_details`` hides them from the public endpoint; this command runs inside the
    container, for its operators, so it always tells them everything.
    """
    return {
        "status": level_to_text(results.level),
        "checks": results.statuses,
        "details": results.details,
    }


def format_table(results: CheckResults) -> str:
    """One row per check (name, status, then each message id and text), then the verdict."""
    rows: list[tuple[str, str, str]] = [("CHECK", "STATUS", "MESSAGES")]
    for name, status in results.statuses.items():
        messages = results.details.get(name, {}).get("messages", {})
        texts = [f"{ident}: {' '.join(str(text).split())}" for ident, text in messages.items()]
        rows.append((name, status, texts[0] if texts else ""))
        rows.extend(("", "", text) for text in texts[1:])
    lines = []
    if len(rows) == 1:
        lines.append("No checks are configured.")
    else:
        name_width = max(len(row[0]) for row in rows)
        status_width = max(len(row[1]) for row in rows)
        lines.extend(
            f"{name:<{name_width}}  {status:<{status_width}}  {messages}".rstrip()
            for name, status, messages in rows
        )
    verdict = "healthy" if results.level < ERROR else "unhealthy"
    lines.append(f"\nstatus: {level_to_text(results.level)} ({verdict})")
    return "\n".join(lines)


def run_heartbeat(args: argparse.Namespace) -> int:
    out = sys.stdout
    with _application_context(args.verbose):
        results = _middleware(args.app).heartbeat.results()
    print(json.dumps(heartbeat_body(results)) if args.json else format_table(results), file=out)
    return EXIT_OK if results.level < ERROR else EXIT_FAILURE


# -- check-config ------------------------------------------------------------------------------

#: Every option of the middleware, in the order of the documentation, with its variable.
OPTIONS: tuple[tuple[str, Optional[str]], ...] = (
    ("version_path", "DOCKERFLOW_VERSION_PATH"),
    ("version_callback", None),
    ("checks", None),
    ("silenced_checks", "DOCKERFLOW_SILENCED_CHECKS"),
    ("check_timeout", "DOCKERFLOW_CHECK_TIMEOUT"),
    ("heartbeat_cache_ttl", "DOCKERFLOW_HEARTBEAT_CACHE_TTL"),
    ("heartbeat_failed_status_code", "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE"),
    ("request_id_header", "DOCKERFLOW_REQUEST_ID_HEADER_NAME"),
    ("log_querystring", "DOCKERFLOW_SUMMARY_LOG_QUERYSTRING"),
    ("heartbeat_details", "DOCKERFLOW_HEARTBEAT_DETAILS"),
    ("error_endpoint", "DOCKERFLOW_ERROR_ENDPOINT"),
    ("log_probes", "DOCKERFLOW_SUMMARY_LOG_PROBES"),
    ("db", "DATABASE_URL"),
    ("redis", "REDIS_URL"),
    ("alembic_config", "ALEMBIC_CONFIG"),
)
_VARIABLES = frozenset(variable for _, variable in OPTIONS if variable)


def _env_value(env: Mapping[str, str], variable: Optional[str]) -> Optional[str]:
    """The variable's value as the middleware reads it: blank counts as unset."""
    if variable is None or not env.get(variable, "").strip():
        return None
    return env[variable]


def _source(
    name: str, variable: Optional[str], config: Config, env: Mapping[str, str], default: Config
) -> str:
    """Where ``config``'s value of ``name`` came from: its variable, the default or a keyword.

    The configuration keeps values, not their origin, so the origin is recovered by parsing
    the variable alone and comparing; a keyword equal to that value is credited to the
    variable, which changes nothing the operator needs to know.
    """
    value = getattr(config, name)
    raw = _env_value(env, variable)
    if variable is None or raw is None:
        return "default" if value == getattr(default, name) else "keyword"
    try:
        from_env = getattr(Config.from_options(environ={variable: raw}), name)
    except ValueError:
        return "keyword"
    return f"from {variable}" if value == from_env else "keyword"


def format_value(value: Any) -> str:
    """A setting as an operator reads it, with any password masked."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (set, frozenset)):
        return ", ".join(sorted(value)) or "none"
    if isinstance(value, str):
        return mask_url(value)
    return _describe_object(value)


def _describe_object(value: Any) -> str:
    """``<Type detail>`` for an engine, client or callable; never the object's own repr.

    A repr may print a connection's password, so only fields known to be safe are shown.
    """
    kind = type(value).__name__
    url = _getattr(value, "url")
    if url is not None:  # a SQLAlchemy Engine
        render = _getattr(url, "render_as_string")
        text = render(hide_password=True) if callable(render) else str(url)
        return f"<{kind} {mask_url(text)}>"
    connection = _getattr(_getattr(value, "connection_pool"), "connection_kwargs")
    if isinstance(connection, Mapping):  # a redis client
        where = connection.get("path") or f"{connection.get('host')}:{connection.get('port')}"
        return f"<{kind} {where}/{connection.get('db', 0)}>"
    name = _getattr(value, "__qualname__")
    if isinstance(name, str):
        return f"<{kind} {_getattr(value, '__module__')}.{name}>"
    return f"<{kind}>"


def describe_settings(middleware: DockerflowMiddleware, env: Mapping[str, str]) -> list[str]:
    """``name = value  (source)`` for every option of ``middleware``, read from ``env``."""
    config = middleware.config
    default = Config.from_options(environ={})
    lines = []
    for name, variable in OPTIONS:
        if name == "checks":
            value = ", ".join(check for check, _ in middleware.current_checks()) or "none"
            source = "keyword" if middleware.checks is not None else "default"
        else:
            value = format_value(getattr(config, name))
            source = _source(name, variable, config, env, default)
        lines.append(f"{name} = {value}  ({source})")
    return lines


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A warning for each ``DOCKERFLOW_*`` variable the middleware does not read (a typo?)."""
    warnings = []
    for variable in sorted(env):
        if variable.startswith("DOCKERFLOW_") and variable not in _VARIABLES:
            close = difflib.get_close_matches(variable, _VARIABLES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"{variable} is not a dockerflow-wsgi setting and is ignored{hint}")
    return warnings


def run_check_config(args: argparse.Namespace) -> int:
    out = sys.stdout
    with _application_context(args.verbose):
        lines = describe_settings(_middleware(args.app), os.environ)
    for warning in unknown_variables(os.environ):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    print("\n".join(lines), file=out)
    return EXIT_OK


# -- version-json ------------------------------------------------------------------------------

_SHA = re.compile(r"[0-9a-fA-F]{7,40}")
# user@host:path, the scp-like syntax git accepts for SSH remotes.
_SCP_LIKE = re.compile(r"(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^\s]+)")
_SSH_SCHEMES = frozenset({"ssh", "git", "git+ssh", "ssh+git"})


@dataclasses.dataclass(frozen=True)
class BuildFacts:
    """What one source says about the build; ``None`` where it says nothing."""

    source: Optional[str] = None
    version: Optional[str] = None
    commit: Optional[str] = None
    build: Optional[str] = None


def _var(env: Mapping[str, str], name: str) -> Optional[str]:
    return env.get(name, "").strip() or None


def _is_true(env: Mapping[str, str], name: str) -> bool:
    return (_var(env, name) or "").lower() == "true"


def _github_actions(env: Mapping[str, str]) -> BuildFacts:
    server = (_var(env, "GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    repository = _var(env, "GITHUB_REPOSITORY")
    run_id = _var(env, "GITHUB_RUN_ID")
    return BuildFacts(
        source=f"{server}/{repository}" if repository else None,
        version=_var(env, "GITHUB_REF_NAME") if _var(env, "GITHUB_REF_TYPE") == "tag" else None,
        commit=_var(env, "GITHUB_SHA"),
        build=f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else None,
    )


def _circleci(env: Mapping[str, str]) -> BuildFacts:
    user, project = _var(env, "CIRCLE_PROJECT_USERNAME"), _var(env, "CIRCLE_PROJECT_REPONAME")
    return BuildFacts(
        source=_var(env, "CIRCLE_REPOSITORY_URL")
        or (f"https://github.com/{user}/{project}" if user and project else None),
        version=_var(env, "CIRCLE_TAG"),
        commit=_var(env, "CIRCLE_SHA1"),
        build=_var(env, "CIRCLE_BUILD_URL"),
    )


def _gitlab_ci(env: Mapping[str, str]) -> BuildFacts:
    return BuildFacts(
        source=_var(env, "CI_PROJECT_URL"),
        version=_var(env, "CI_COMMIT_TAG"),
        commit=_var(env, "CI_COMMIT_SHA"),
        build=_var(env, "CI_JOB_URL"),
    )


#: CI providers by the variable that says the build runs there, in order of precedence.
CI_PROVIDERS: tuple[tuple[str, Callable[[Mapping[str, str]], BuildFacts]], ...] = (
    ("GITHUB_ACTIONS", _github_actions),
    ("CIRCLECI", _circleci),
    ("GITLAB_CI", _gitlab_ci),
)


def _ci_provider(env: Mapping[str, str]) -> BuildFacts:
    for flag, read in CI_PROVIDERS:
        if _is_true(env, flag):
            return read(env)
    return BuildFacts()


def _generic(env: Mapping[str, str]) -> BuildFacts:
    return BuildFacts(
        source=_var(env, "SOURCE_URL"),
        version=_var(env, "VERSION"),
        commit=_var(env, "GIT_COMMIT"),
        build=_var(env, "BUILD_URL"),
    )


def git(*args: str) -> Optional[str]:
    """The output of ``git args`` in the current directory, or ``None`` if git fails."""
    try:
        result = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (result.stdout.strip() or None) if result.returncode == 0 else None


def without_credentials(url: str) -> str:
    """``url`` without its ``user:password@`` part, query and fragment (tokens hide there)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def repository_url(remote: str) -> str:
    """A browsable ``https://`` URL for a git remote, without credentials or ``.git``.

    ``git@github.com:org/repo.git`` and ``ssh://git@host/org/repo`` become
    ``https://github.com/org/repo`` and ``https://host/org/repo``; other URLs keep their
    scheme. A local path is returned unchanged.
    """
    remote = remote.strip()
    scp = None if "://" in remote else _SCP_LIKE.fullmatch(remote)
    if scp is not None:
        url = f"https://{scp['host']}/{scp['path'].lstrip('/')}"
    else:
        parts = urlsplit(remote)
        if parts.scheme in _SSH_SCHEMES and parts.hostname:
            url = f"https://{parts.hostname}{parts.path}"
        else:
            url = without_credentials(remote)
    url = url.rstrip("/")
    return url[: -len(".git")] if url.endswith(".git") else url


def version_info(env: Mapping[str, str]) -> dict[str, str]:
    """The Dockerflow ``version.json`` fields, from CI variables, generic variables, then git.

    Each field is taken from the first source that knows it; git runs only for what the
    variables left open. The version is the tag of the commit, or else the commit itself.

    :raises CommandError: (exit status 1) when no commit is found or it is not a sha.
    """
    sources = (_ci_provider(env), _generic(env))

    def first(field: str) -> Optional[str]:
        return next((getattr(s, field) for s in sources if getattr(s, field)), None)

    commit = first("commit") or git("rev-parse", "HEAD")
    if commit is None:
        raise CommandError(
            "no commit found: run in a git working tree, in GitHub Actions, CircleCI or "
            "GitLab CI, or set GIT_COMMIT",
            EXIT_FAILURE,
        )
    if not _SHA.fullmatch(commit):
        raise CommandError(
            f"commit {commit!r} is not a git sha (7 to 40 hexadecimal digits)", EXIT_FAILURE
        )
    commit = commit.lower()
    version = first("version") or git("describe", "--tags", "--exact-match", commit) or commit
    source = first("source") or git("remote", "get-url", "origin")
    if source is None:
        print(
            f"{PROG}: warning: no repository URL found (no CI variables, no SOURCE_URL, no git "
            'remote "origin"); "source" is empty',
            file=sys.stderr,
        )
    build = first("build")
    return {
        "source": repository_url(source) if source else "",
        "version": version,
        "commit": commit,
        "build": without_credentials(build) if build else "",
    }


def _current_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def write_atomically(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a reader sees the old file or the new one.

    The file gets the usual permissions (0666 less the umask), not the 0600 of a temporary
    file, because the application reading it often runs as another user than the build.
    """
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".version.json.", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def run_version_json(args: argparse.Namespace) -> int:
    text = json.dumps(version_info(os.environ), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    path = args.output
    if os.path.isdir(path):
        path = os.path.join(path, "version.json")
    try:
        write_atomically(path, text)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}", EXIT_FAILURE) from None
    return EXIT_OK


# -- the command line --------------------------------------------------------------------------

_HEARTBEAT_HELP = """\
Run every configured check once, as /__heartbeat__ would: the checks of entry
points, the built-ins that DATABASE_URL, REDIS_URL and ALEMBIC_CONFIG ask for,
and those that --app registers. For Docker HEALTHCHECK and Kubernetes exec probes.
"""

_HEARTBEAT_EPILOG = """\
exit status:
  0  healthy (warnings included)
  1  unhealthy: a check is at error or critical
  2  usage or configuration error (bad --app, invalid DOCKERFLOW_* value)

example:
  HEALTHCHECK CMD dockerflow-wsgi heartbeat --app myproject.wsgi:application
"""

_VERSION_JSON_HELP = """\
Write the Dockerflow version.json of the current build. Each field comes from
the first source that knows it:

  1. GitHub Actions, CircleCI or GitLab CI variables
  2. GIT_COMMIT, VERSION, SOURCE_URL and BUILD_URL
  3. git in the current directory (HEAD, its tag, the "origin" remote)

"version" is the commit's tag, else the commit. Credentials in URLs are removed.
"""

_CHECK_CONFIG_HELP = """\
Build the middleware from the environment (DOCKERFLOW_*, DATABASE_URL,
REDIS_URL, ALEMBIC_CONFIG), which creates database engines and Redis clients
without connecting, and print every setting as "name = value  (source)",
where the source is the variable, the default, or (with --app) a keyword
argument of the application's own middleware. Passwords are masked.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``dockerflow-wsgi`` argument parser and its three commands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Dockerflow tools for WSGI services that use dockerflow-wsgi.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    application = argparse.ArgumentParser(add_help=False)
    application.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="import the WSGI application as gunicorn does, from the current directory "
        "(ATTR defaults to 'application'; 'create_app()' calls a factory). Its "
        "DockerflowMiddleware's options and checks are used if it has one; otherwise the "
        "checks its modules register run with options from the environment",
    )
    application.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="write dockerflow_wsgi log records (e.g. a failing check's traceback) to stderr",
    )
    raw = argparse.RawDescriptionHelpFormatter

    heartbeat = commands.add_parser(
        "heartbeat",
        parents=[application],
        help="run the health checks once; exit 0 when healthy, 1 when not",
        description=_HEARTBEAT_HELP,
        epilog=_HEARTBEAT_EPILOG,
        formatter_class=raw,
    )
    heartbeat.add_argument(
        "--json",
        action="store_true",
        help="print the heartbeat JSON body {status, checks, details} instead of a table",
    )
    heartbeat.set_defaults(handler=run_heartbeat)

    version_json = commands.add_parser(
        "version-json",
        help="write version.json (source, version, commit, build) for /__version__",
        description=_VERSION_JSON_HELP,
        epilog="exit status: 0 written, 1 no commit found or the file cannot be written",
        formatter_class=raw,
    )
    version_json.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="write to PATH atomically (a directory gets PATH/version.json); "
        "default: standard output",
    )
    version_json.set_defaults(handler=run_version_json)

    check_config = commands.add_parser(
        "check-config",
        parents=[application],
        help="validate the DOCKERFLOW_* environment and print the effective settings",
        description=_CHECK_CONFIG_HELP,
        epilog="exit status: 0 valid, 2 invalid (the problem is printed on stderr)",
        formatter_class=raw,
    )
    check_config.set_defaults(handler=run_check_config)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``dockerflow-wsgi`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # --help, --version and usage errors: argparse has printed what it had to say.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
