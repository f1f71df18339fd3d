"""``dockerflow-wsgi version-json``: write the build's ``version.json`` in the image's build step.

Each field comes from the first source that knows it: the CI provider's variables, generic
variables, then git. URLs lose their credentials on the way, as the file is served publicly.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Callable, Optional
from urllib.parse import urlsplit, urlunsplit

from ..version import VERSION_FILENAME
from .errors import EXIT_FAILURE, EXIT_OK, CommandError, warn

__all__ = [
    "CI_PROVIDERS",
    "BuildFacts",
    "add_command",
    "git",
    "repository_url",
    "run_version_json",
    "version_info",
    "without_credentials",
    "write_atomically",
]

_DESCRIPTION = """\
Write the Dockerflow version.json of the current build. Each field comes from
the first source that knows it:

  1. GitHub Actions, CircleCI or GitLab CI variables
  2. GIT_COMMIT, VERSION, SOURCE_URL and BUILD_URL
  3. git in the current directory (HEAD, its tag, the "origin" remote)

"version" is the commit's tag, else the commit. Credentials in URLs are removed.
"""

_SHA = re.compile(r"[0-9a-fA-F]{7,40}")
# user@host:path, the scp-like syntax git accepts for SSH remotes.
_SCP_LIKE = re.compile(r"(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^\s]+)")
_SSH_SCHEMES = frozenset({"ssh", "git", "git+ssh", "ssh+git"})


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``version-json`` and its options to the ``commands`` of the top-level parser."""
    version_json = commands.add_parser(
        "version-json",
        help="write version.json (source, version, commit, build) for /__version__",
        description=_DESCRIPTION,
        epilog="exit status: 0 written, 1 no commit found or the file cannot be written",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    version_json.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="write to PATH atomically (a directory gets PATH/version.json); "
        "default: standard output",
    )
    version_json.set_defaults(handler=run_version_json)


# -- where the fields come from ----------------------------------------------------------------


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


# -- cleaning the URLs -------------------------------------------------------------------------


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


# -- the file ----------------------------------------------------------------------------------


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
        warn(
            'no repository URL found (no CI variables, no SOURCE_URL, no git remote "origin"); '
            '"source" is empty'
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
    descriptor, temporary = tempfile.mkstemp(prefix=f".{VERSION_FILENAME}.", dir=directory)
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
    """Write ``version.json`` to ``--output`` (a file or a directory), else to stdout."""
    text = json.dumps(version_info(os.environ), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    path = args.output
    if os.path.isdir(path):
        path = os.path.join(path, VERSION_FILENAME)
    try:
        write_atomically(path, text)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}", EXIT_FAILURE) from None
    return EXIT_OK
