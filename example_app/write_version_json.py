"""Write the example's ``version.json`` from the git checkout it runs in."""

from __future__ import annotations

import json
import subprocess
import sys


def git(*args: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


def main(path: str) -> None:
    version = {
        "source": git("config", "--get", "remote.origin.url"),
        "version": git("describe", "--tags", "--always") or "unknown",
        "commit": git("rev-parse", "HEAD"),
        "build": "",
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(version, handle, indent=2)
        handle.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
