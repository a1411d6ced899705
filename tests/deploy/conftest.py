from __future__ import annotations

import os
import shutil

import pytest

INSTALL_HINT = "install Debian's package `prometheus` (apt-get install -y prometheus)"


def prometheus_tool(name: str) -> str:
    """Path of ``promtool`` or ``prometheus``: skip without it, except under CI=true."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: {INSTALL_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def promtool() -> str:
    return prometheus_tool("promtool")


@pytest.fixture
def prometheus() -> str:
    return prometheus_tool("prometheus")
