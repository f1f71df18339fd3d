"""``make dist``: the sdist and the wheel a user installs from when the package is not on PyPI.

The wheel is installed into a new virtualenv, with no access to this checkout, and imported
there. Its two dependencies are taken from the virtualenv running the tests (a ``.pth`` file
naming their directory), so nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
DEPENDENCIES = ("pythonjsonlogger", "blinker")


def clean_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MAKE", "PYTHON", "VIRTUAL_ENV"))
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make dist`` into a directory of the test's; the build front end is installed already
    (the test extra has it), so make is told (``-o``) not to install it."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    output = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [
            make,
            "--no-print-directory",
            "-o",
            f"{VENV}/.installed-build",
            "dist",
            f"VENV={VENV}",
            f"DIST={output}",
        ],
        cwd=REPOSITORY,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output


def only(directory: Path, pattern: str) -> Path:
    [found] = directory.glob(pattern)
    return found


def test_dist_builds_one_sdist_and_one_wheel(dist: Path) -> None:
    assert sorted(path.suffix for path in dist.iterdir()) == [".gz", ".whl"]
    assert only(dist, "dockerflow_wsgi-*.tar.gz")
    assert only(dist, "dockerflow_wsgi-*-py3-none-any.whl")


def test_the_wheel_ships_py_typed_and_the_package_only(dist: Path) -> None:
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        names = wheel.namelist()
    assert "dockerflow_wsgi/py.typed" in names
    assert "dockerflow_wsgi/checks/__init__.py" in names
    top_level = {name.split("/")[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"dockerflow_wsgi"}


def test_the_sdist_ships_py_typed(dist: Path) -> None:
    with tarfile.open(only(dist, "*.tar.gz")) as sdist:
        names = sdist.getnames()
    assert any(name.endswith("/dockerflow_wsgi/py.typed") for name in names)


def test_the_wheel_installs_into_a_new_virtualenv_and_imports(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--no-index", str(only(dist, "*.whl"))],
        check=True,
        env=clean_environment(),
        timeout=120,
    )
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dependency_dirs = set()
    for name in DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        dependency_dirs.add(str(Path(spec.origin).parent.parent))
    (Path(site_packages) / "dependencies.pth").write_text("\n".join(sorted(dependency_dirs)))

    imported = subprocess.run(
        [
            str(python),
            "-c",
            "import dockerflow_wsgi, dockerflow_wsgi.logging, importlib.metadata as m; "
            "print(dockerflow_wsgi.__file__); print(m.version('dockerflow-wsgi'))",
        ],
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
    )

    assert imported.returncode == 0, imported.stderr
    location, version = imported.stdout.split()
    assert Path(location).is_relative_to(Path(site_packages))
    assert version
    assert (venv / "bin" / "dockerflow-wsgi").exists()
