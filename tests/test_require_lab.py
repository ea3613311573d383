"""NATPROBE_REQUIRE_LAB=1 turns a missing lab prerequisite into a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import scaled

ROOT = Path(__file__).resolve().parent.parent
#: A lab test whose prerequisite (haproxy) is hidden by a PATH without it.
TARGET = "tests/proxies/test_haproxy_tcp.py"


def run_without_haproxy(require: bool) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:/nonexistent")
    env.pop("NATPROBE_REQUIRE_LAB", None)
    if require:
        env["NATPROBE_REQUIRE_LAB"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "-rfEs", TARGET],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=scaled(120),
    )  # fmt: skip


@pytest.mark.parametrize("require", [False, True])
def test_a_missing_prerequisite_skips_with_its_reason_or_fails_when_required(require: bool) -> None:
    proc = run_without_haproxy(require)
    reason = "`haproxy` is not on PATH (apt-get install haproxy)"
    assert reason in proc.stdout, proc.stdout[-2000:]
    if require:
        # Failed in setup: pytest counts it as an error, and the run fails.
        assert proc.returncode == 1 and "1 error" in proc.stdout
        assert f"NATPROBE_REQUIRE_LAB=1 and {reason}" in proc.stdout
    else:
        assert proc.returncode == 0 and "1 skipped" in proc.stdout
