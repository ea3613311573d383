"""natprobe's pytest plugin: expiring NATs as fixtures (docs/testing-your-app.md).

Registered under the ``pytest11`` entry point, so pytest loads this module in
every project where natprobe is installed. It imports nothing but pytest
until a test asks for one of its fixtures: the middleboxes live in
probe.testing and come in on first use.

* ``expiring_nat(upstream=(host, port), idle_timeout=5, mode="drop")``
* ``expiring_udp_nat(upstream=(host, port), idle_timeout=30, inbound_refresh=True)``
* ``kernel_nat(tcp_timeout=5, udp_timeout=30, udp_stream_timeout=120, after_expiry="blackhole")``
* ``@pytest.mark.natprobe(upstream=..., idle_timeout=..., mode=...)``: the
  test's ``expiring_nat`` is then the ready NAT, not the factory.

Each factory's NATs are closed at the test's teardown, newest first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pytest

if TYPE_CHECKING:
    from probe.testing.expiring import ExpiringNat, ExpiringUdpNat
    from probe.testing.kernel import KernelNat

MARKER = "natprobe"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(upstream, idle_timeout=5, mode='drop'): the test's expiring_nat fixture is a ready NAT in front "
        "of upstream, a (host, port) tuple or the name of a fixture that returns one",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A marker without the fixture would set nothing up, silently.
    if item.get_closest_marker(MARKER) is not None and "expiring_nat" not in getattr(item, "fixturenames", ()):
        pytest.fail(f"@pytest.mark.{MARKER} needs the test to take the expiring_nat fixture", pytrace=False)


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class _Closing:
    """The objects a factory made, closed at teardown, newest first."""

    def __init__(self) -> None:
        self.made: list[_Closable] = []

    def keep(self, thing: C) -> C:
        self.made.append(thing)
        return thing

    def close(self) -> None:
        errors: list[BaseException] = []
        while self.made:
            try:
                self.made.pop().close()
            except Exception as exc:  # close the rest, then report
                errors.append(exc)
        if errors:
            raise errors[0]


def _marked_nat(request: pytest.FixtureRequest, mark: pytest.Mark) -> ExpiringNat:
    from probe.testing.expiring import ExpiringNat

    if mark.args:
        pytest.fail(
            f"@pytest.mark.{MARKER} takes keywords only: upstream=..., idle_timeout=..., mode=...", pytrace=False
        )
    kwargs = dict(mark.kwargs)
    if "upstream" not in kwargs:
        pytest.fail(f"@pytest.mark.{MARKER} needs upstream=(host, port) or upstream='fixture_name'", pytrace=False)
    upstream = kwargs.pop("upstream")
    if isinstance(upstream, str):
        upstream = request.getfixturevalue(upstream)
    return ExpiringNat(upstream, **kwargs)


@pytest.fixture
def expiring_nat(request: pytest.FixtureRequest) -> Iterator[Callable[..., ExpiringNat] | ExpiringNat]:
    """A factory of userspace NATs that forget idle TCP flows (no root needed)."""
    from probe.testing.expiring import ExpiringNat

    made = _Closing()
    mark = request.node.get_closest_marker(MARKER)
    try:
        if mark is not None:
            yield made.keep(_marked_nat(request, mark).start())
            return

        def factory(
            upstream: tuple[str, int], idle_timeout: float = 5, mode: str = "drop", **kwargs: Any
        ) -> ExpiringNat:
            return made.keep(ExpiringNat(upstream, idle_timeout, mode, **kwargs).start())

        yield factory
    finally:
        made.close()


@pytest.fixture
def expiring_udp_nat() -> Iterator[Callable[..., ExpiringUdpNat]]:
    """A factory of userspace UDP NATs whose bindings expire (no root needed)."""
    from probe.testing.expiring import ExpiringUdpNat

    made = _Closing()

    def factory(
        upstream: tuple[str, int], idle_timeout: float = 30, inbound_refresh: bool = True, **kwargs: Any
    ) -> ExpiringUdpNat:
        return made.keep(ExpiringUdpNat(upstream, idle_timeout, inbound_refresh, **kwargs).start())

    try:
        yield factory
    finally:
        made.close()


@pytest.fixture
def kernel_nat() -> Iterator[Callable[..., KernelNat]]:
    """A factory of real kernel NATs in network namespaces (root needed).

    Where this machine cannot build one, the test skips with the reason; with
    NATPROBE_REQUIRE_LAB=1 (for a CI that must run them) it fails instead.
    """
    from probe.lab.netns import unavailable_reason
    from probe.testing.kernel import KernelNat

    made = _Closing()

    def factory(
        tcp_timeout: int = 5,
        udp_timeout: int = 30,
        udp_stream_timeout: int = 120,
        after_expiry: str = "blackhole",
        **switches: Any,
    ) -> KernelNat:
        nat = KernelNat(tcp_timeout, udp_timeout, udp_stream_timeout, after_expiry, **switches)
        reason = unavailable_reason()
        if reason is not None:
            if os.environ.get("NATPROBE_REQUIRE_LAB") == "1":
                pytest.fail(f"NATPROBE_REQUIRE_LAB=1 and {reason}", pytrace=False)
            pytest.skip(reason)
        return made.keep(nat.start())

    try:
        yield factory
    finally:
        made.close()
