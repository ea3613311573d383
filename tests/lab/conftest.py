"""The kernel NAT lab for natprobe's own tests. Tests here are marked ``lab``.

The NAT itself is the test kit's ``kernel_nat`` fixture (probe/testing), the
same one application developers use; this adds only natprobe's processes
on either side of it.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from probe.testing import KernelNat
from tests.conftest import PIPES, Proc, output_json, scaled, wait_ready


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/lab/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.lab)
            # Skipped with the reason where the machine cannot build the lab;
            # a failure instead with NATPROBE_REQUIRE_LAB=1 (tests/conftest.py).
            item.add_marker(pytest.mark.requires("kernel_nat", "ss"))


def start_in(nat: KernelNat, side: str, argv: list[str], ready: str, stream: str = "stderr") -> Proc:
    """``argv`` on the ``side`` ("server" or "client") of the NAT, once it said ``ready``."""
    popen = nat.server if side == "server" else nat.client
    return wait_ready(popen(argv, **PIPES), ready, stream)


def natprobe_server(nat: KernelNat, *listen: str) -> Proc:
    return start_in(nat, "server", [sys.executable, "-m", "probe", "server", *listen], ready="listening on")


def natprobe(nat: KernelNat, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``natprobe ARGS`` run to its end on the client's side."""
    argv = [sys.executable, "-m", "probe", *args]
    proc = nat.client(argv, **PIPES)
    out, err = proc.communicate(timeout=scaled(timeout))
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def natprobe_json(nat: KernelNat, *args: str, expect_rc: int | None = 0) -> dict[str, Any]:
    proc = natprobe(nat, *args, "--json")
    if expect_rc is not None:
        assert proc.returncode == expect_rc, proc.stderr + proc.stdout[-3000:]
    result: dict[str, Any] = output_json(proc.stdout)
    return result
