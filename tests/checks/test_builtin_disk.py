"""The disk space check on a real directory, with thresholds set around its volume's free space
as it is when the test runs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from webtest import TestApp

from dockerflow_wsgi import DockerflowMiddleware, checks
from dockerflow_wsgi.checks import ERROR, WARNING
from dockerflow_wsgi.checks.disk import check_disk_space, human

E201 = "dockerflow.health.E201"
W201 = "dockerflow.health.W201"
E202 = "dockerflow.health.E202"

# Other processes write to the volume while the test runs: thresholds stay a tenth away from
# the free space they are set around.
BELOW, ABOVE = 0.9, 1.1

SIZE = r"\d+(\.\d)? (bytes|KiB|MiB|GiB|TiB|PiB)"


def ids(messages: list[Any]) -> list[tuple[str, int]]:
    return [(message.id, message.level) for message in messages]


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def free_percent(path: Path) -> float:
    usage = shutil.disk_usage(path)
    return 100 * usage.free / usage.total


# -- against the volume's free space ---------------------------------------------------------


def test_enough_space_is_ok(tmp_path: Path) -> None:
    free = free_bytes(tmp_path)

    assert check_disk_space(tmp_path, error_below=int(free * BELOW)) == []
    assert check_disk_space(str(tmp_path), error_below=0, warning_below=int(free * BELOW)) == []


def test_less_than_error_below_is_e201_in_human_units(tmp_path: Path) -> None:
    free = free_bytes(tmp_path)

    (message,) = check_disk_space(tmp_path, error_below=int(free * ABOVE))

    assert (message.id, message.level) == (E201, ERROR)
    assert re.fullmatch(
        rf"{SIZE} free of {SIZE} at {re.escape(str(tmp_path))}, below {SIZE}", message.msg
    )


def test_less_than_warning_below_is_w201(tmp_path: Path) -> None:
    free = free_bytes(tmp_path)

    messages = check_disk_space(
        tmp_path, error_below=int(free * BELOW), warning_below=int(free * ABOVE)
    )

    assert ids(messages) == [(W201, WARNING)]


def test_percentages_of_the_volume(tmp_path: Path) -> None:
    percent = free_percent(tmp_path)
    below, above = f"{percent * BELOW:.3f}%", f"{min(percent * ABOVE, 100):.3f}%"

    assert check_disk_space(tmp_path, error_below=below) == []
    assert ids(check_disk_space(tmp_path, error_below=below, warning_below=above)) == [
        (W201, WARNING)
    ]
    (message,) = check_disk_space(tmp_path, error_below=above)
    assert message.id == E201
    assert f"below {above} (" in message.msg


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("missing", id="missing"),
        pytest.param("file/below-a-file", id="below-a-file"),
    ],
)
def test_a_path_that_cannot_be_read_is_e202(tmp_path: Path, path: str) -> None:
    (tmp_path / "file").write_text("not a directory")

    (message,) = check_disk_space(tmp_path / path, error_below="5%")

    assert (message.id, message.level) == (E202, ERROR)
    assert str(tmp_path / path) in message.msg


def test_through_the_heartbeat_under_a_name_of_its_own(tmp_path: Path, hello_app: Any) -> None:
    free = free_bytes(tmp_path)
    checks.register_partial(
        check_disk_space, tmp_path, error_below=int(free * ABOVE), name="disk_space"
    )

    response = TestApp(DockerflowMiddleware(hello_app)).get("/__heartbeat__", status="*")

    assert response.status_int == 500
    assert response.json["checks"] == {"disk_space": "error"}
    assert list(response.json["details"]["disk_space"]["messages"]) == [E201]


# -- registering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keywords", "problem"),
    [
        ({"error_below": "5"}, "error_below"),
        ({"error_below": "five%"}, "error_below"),
        ({"error_below": "101%"}, "error_below"),
        ({"error_below": -1}, "error_below"),
        ({"error_below": 1.5}, "error_below"),
        ({"error_below": True}, "error_below"),
        ({"error_below": "5%", "warning_below": "-2%"}, "warning_below"),
        ({"error_below": "10%", "warning_below": "5%"}, "never be seen"),
        ({"error_below": 1000, "warning_below": 10}, "never be seen"),
    ],
)
def test_bad_thresholds_stop_the_registration(
    tmp_path: Path, keywords: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        checks.register_partial(check_disk_space, tmp_path, **keywords)

    assert checks.get_checks() == {}


def test_a_missing_threshold_stops_the_registration(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="error_below"):
        checks.register_partial(check_disk_space, tmp_path, warning_below="10%")


# -- thresholds and units --------------------------------------------------------------------


@given(st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda p: f"{p:.4f}%"))
def test_any_percentage_up_to_100_is_a_threshold(threshold: str) -> None:
    check_disk_space.check_arguments("/", error_below=threshold)  # type: ignore[attr-defined]


@given(st.integers(min_value=0))
def test_any_number_of_bytes_is_a_threshold(threshold: int) -> None:
    check_disk_space.check_arguments("/", error_below=threshold)  # type: ignore[attr-defined]


@given(
    st.one_of(
        st.integers(max_value=-1),
        st.floats(min_value=100, exclude_min=True, allow_nan=False, allow_infinity=False).map(
            lambda p: f"{p}%"
        ),
        st.text().filter(lambda text: re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?%\s*", text) is None),
    )
)
def test_anything_else_is_not(threshold: Any) -> None:
    with pytest.raises(ValueError, match="error_below"):
        check_disk_space.check_arguments("/", error_below=threshold)  # type: ignore[attr-defined]


UNITS = {
    "bytes": 1,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "PiB": 2**50,
    "EiB": 2**60,
}


@given(st.integers(min_value=0, max_value=2**60))
def test_human_units_are_within_rounding_of_the_size(size: int) -> None:
    number, unit = human(size).split(" ")

    assert abs(float(number) * UNITS[unit] - size) <= 0.05 * UNITS[unit]
    assert float(number) < 1024
