"""The kernel NAT lab as fixtures. Tests here are marked ``lab``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from probe.lab.netns import NatLab, nat_lab
from tests.conftest import Proc, output_json, scaled, start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/lab/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.lab)
            # Skipped with the reason where the machine cannot build the lab;
            # a failure instead with NATPROBE_REQUIRE_LAB=1 (tests/conftest.py).
            item.add_marker(pytest.mark.requires("kernel_nat", "ss"))


class Lab:
    """A NAT lab plus helpers to run natprobe on either side of it."""

    def __init__(self, lab: NatLab) -> None:
        self.nat = lab
        self._procs: list[Proc] = []

    def start(self, ns: str, argv: list[str], ready: str, stream: str = "stderr") -> Proc:
        started = start(self.nat.exec_args(ns, argv), ready, stream)
        self._procs.append(started)
        return started

    def natprobe_server(self, *listen: str) -> Proc:
        return self.start(self.nat.server, [sys.executable, "-m", "probe", "server", *listen], ready="listening on")

    def client(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        timeout = scaled(timeout)
        return subprocess.run(
            self.nat.exec_args(self.nat.client, [sys.executable, "-m", "probe", *args]),
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def client_json(self, *args: str, expect_rc: int | None = 0) -> dict[str, Any]:
        proc = self.client(*args, "--json")
        if expect_rc is not None:
            assert proc.returncode == expect_rc, proc.stderr + proc.stdout[-3000:]
        result: dict[str, Any] = output_json(proc.stdout)
        return result

    def close(self) -> None:
        for proc in self._procs:
            proc.stop()


@pytest.fixture
def make_lab() -> Iterator[Callable[..., Any]]:
    """make_lab(timeout_s, loose=False, random_ports=False, router_rst=True, udp=None) as a context manager."""
    labs: list[Lab] = []

    @contextmanager
    def factory(
        timeout_s: int,
        loose: bool = False,
        random_ports: bool = False,
        router_rst: bool = True,
        udp: tuple[int, int] | None = None,
    ) -> Iterator[Lab]:
        with nat_lab(timeout_s, loose=loose, random_ports=random_ports, router_rst=router_rst, udp=udp) as nat:
            lab = Lab(nat)
            labs.append(lab)
            try:
                yield lab
            finally:
                lab.close()

    yield factory
