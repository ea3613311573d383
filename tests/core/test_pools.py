"""--parallel counts every connection a discovery holds at once, by transport."""

from __future__ import annotations

import pytest

from probe.core.pools import DEFAULT_PARALLEL, DEFAULT_UDP_PARALLEL, pool_for, tcp_planner_pool
from probe.core.targets import Transport
from probe.errors import UsageError


def test_the_defaults_are_32_and_96_in_all() -> None:
    assert pool_for(Transport.TCP, None) == pool_for(Transport.WS, None) == DEFAULT_PARALLEL - 1 == 31
    # The after-expiry test keeps two of the 31 aside.
    assert tcp_planner_pool() == 29 and tcp_planner_pool(64) == 61
    assert pool_for(Transport.UDP, None) == (DEFAULT_UDP_PARALLEL - 2) // 3 == 31


@pytest.mark.parametrize(
    ("transport", "parallel", "pool"),
    [
        (Transport.TCP, 3, 2),
        (Transport.TCP, 32, 31),
        (Transport.UDP, 96, 31),
        (Transport.UDP, 8, 2),
        (Transport.UDP, 10, 2),
    ],
)
def test_udp_shares_what_is_left_after_control_and_refresh(transport: Transport, parallel: int, pool: int) -> None:
    assert pool_for(transport, parallel) == pool


@pytest.mark.parametrize(("transport", "parallel"), [(Transport.UDP, 7), (Transport.UDP, 3), (Transport.TCP, 2)])
def test_too_few_is_a_usage_error_saying_the_least(transport: Transport, parallel: int) -> None:
    with pytest.raises(UsageError) as caught:
        pool_for(transport, parallel)
    least = 8 if transport is Transport.UDP else 3
    assert caught.value.message == (
        f"--parallel: {transport.value}:// needs at least {least} connections at once, got {parallel}"
    )
