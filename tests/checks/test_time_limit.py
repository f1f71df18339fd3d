"""A check knows its time limit while the runner runs it (for the built-ins to bound their
waits), and ``register_partial`` binds keywords and checks the arguments when registering."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dockerflow_wsgi import checks
from dockerflow_wsgi.checks.runner import CheckRunner
from dockerflow_wsgi.checks.time_limit import running_time_limit, service_wait


def reports_its_limit() -> list[checks.CheckMessage]:
    return [checks.Info(str(running_time_limit()), id="t.I1")]


async def reports_its_limit_async() -> list[checks.CheckMessage]:
    return [checks.Info(str(running_time_limit()), id="t.I1")]


PAIRS = [
    ("sync", reports_its_limit),
    ("async", reports_its_limit_async),
    ("short", reports_its_limit),
    ("short_async", reports_its_limit_async),
]
EXPECTED = {"sync": "3", "async": "3", "short": "0.5", "short_async": "0.5"}


def limits(messages: dict[str, list[checks.CheckMessage]]) -> dict[str, str]:
    return {name: found[0].msg for name, found in messages.items()}


def test_each_check_runs_knowing_its_own_limit_on_threads() -> None:
    runner = CheckRunner(timeout=3, timeouts={"short": 0.5, "short_async": 0.5})

    assert limits(runner.messages(PAIRS)) == EXPECTED


def test_each_check_runs_knowing_its_own_limit_on_the_callers_loop() -> None:
    runner = CheckRunner(timeout=3, timeouts={"short": 0.5, "short_async": 0.5})

    assert limits(asyncio.run(runner.messages_async(PAIRS))) == EXPECTED


def test_outside_a_runner_there_is_no_limit_and_the_wait_is_four_seconds() -> None:
    assert running_time_limit() is None
    assert service_wait() == 4.0
    assert service_wait(1.5) == 1.5
    assert checks.run_checks([("plain", reports_its_limit)]).details["plain"]["messages"] == {
        "t.I1": "None"
    }


# -- register_partial ------------------------------------------------------------------------


def bound(resource: str, *, level: int = checks.WARNING) -> list[checks.CheckMessage]:
    return [checks.CheckMessage(resource, level=level, id="t.W1")]


def test_register_partial_binds_positional_and_keyword_arguments() -> None:
    check = checks.register_partial(bound, "the queue", level=checks.ERROR, name="queue")

    assert checks.get_checks() == {"queue": check}
    (message,) = check()
    assert (message.msg, message.level) == ("the queue", checks.ERROR)
    assert check.__name__ == "bound"


@pytest.mark.parametrize(
    ("args", "keywords"),
    [((), {}), (("a", "b"), {}), (("a",), {"colour": "red"})],
    ids=["missing", "too-many", "unknown-keyword"],
)
def test_arguments_the_function_does_not_take_stop_the_registration(
    args: tuple[Any, ...], keywords: dict[str, Any]
) -> None:
    with pytest.raises(TypeError, match=r"register_partial\(bound, \.\.\.\)"):
        checks.register_partial(bound, *args, **keywords)

    assert checks.get_checks() == {}


def test_a_function_may_check_its_arguments_when_registered() -> None:
    def check_arguments(resource: str) -> None:
        if not resource:
            raise ValueError("resource must not be empty")

    def named(resource: str) -> list[checks.CheckMessage]:
        return []

    named.check_arguments = check_arguments  # type: ignore[attr-defined]

    with pytest.raises(ValueError, match="must not be empty"):
        checks.register_partial(named, "")
    checks.register_partial(named, "orders")

    assert list(checks.get_checks()) == ["named"]
