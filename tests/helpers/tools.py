"""Real command-line tools the tests build their samples with."""

from __future__ import annotations

import shutil

import pytest


def tool(name: str) -> str:
    """The path of `name` (also under /usr/sbin); missing is a failure, not a skip:
    scripts/system-deps installs every tool a test calls."""
    path = shutil.which(name) or shutil.which(f"/usr/sbin/{name}")
    if path is None:
        pytest.fail(f"{name} not installed (scripts/system-deps installs it)")
    return path
