"""Headless chromium for the browser tests (Debian package ``chromium``, installed by .ci/run).

Tests using it carry ``@pytest.mark.browser``. Without chromium they skip with a reason, unless
``$CI`` is set: in CI a missing browser is a broken pipeline and the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest


def chromium() -> str:
    """The chromium binary; skips the test when absent, unless $CI is set (then it fails)."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if found:
        return found
    how = "chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{how}; CI is set, so the browser check must run")
    pytest.skip(how)


def headless_chromium(
    url: str, *, screenshot: Path, budget_ms: int = 20000, extra: Sequence[str] = ()
) -> str:
    """Load ``url`` in a fresh headless chromium; save a screenshot; return the rendered DOM."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(
            [
                chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                f"--user-data-dir={profile}", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                f"--virtual-time-budget={budget_ms}", f"--screenshot={screenshot}",
                *extra, "--dump-dom", url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
