"""discover through ``natprobe emulate``'s middlebox, in real time on loopback.

Timeline: the emulator forgets flows idle T = 2.5 s (scaled). The goal from
docs/discovery.md applies: bracket contains T, at most max(2% T, 0.5 s) wide,
within 1.10 T + 2 s plus the grace period.
"""

from __future__ import annotations

import asyncio

import pytest

from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.run.discover import DiscoverOptions, DiscoverRun
from tests.conftest import scaled
from tests.run.helpers import emulated_path

T = scaled(2.5)


async def _discover(mode: str, config: PlannerConfig | None = None) -> tuple[dict[str, object], int]:
    async with emulated_path(T, mode) as path:
        runner = DiscoverRun(DiscoverOptions(Target("tcp", path.host, path.port), config or PlannerConfig()))
        result = (await runner.run()).to_json()
        return result, path.emulator.stats.expired


@pytest.mark.parametrize(("mode", "failure_mode"), [("drop", "silent_drop"), ("reset", "reset"), ("close", "closed")])
def test_bracket_contains_the_emulated_timeout(mode: str, failure_mode: str) -> None:
    result, expired = asyncio.run(_discover(mode))
    lower, upper = result["lower_s"], result["upper_s"]
    assert isinstance(lower, float) and isinstance(upper, float)
    assert lower <= T <= upper
    assert upper - lower <= max(0.02 * T, 0.5) + 1e-3
    assert result["failure_mode"] == failure_mode
    assert result["consistent"] is True
    assert expired >= 1
    grace = result["grace_s"]
    assert isinstance(grace, float)
    assert result["wall_s"] <= 1.10 * T + 2.0 + grace + scaled(0.3)


def test_expect_min_stops_early_when_the_path_is_shorter() -> None:
    result, _ = asyncio.run(_discover("drop", PlannerConfig(expect_min_s=60.0)))
    assert result["reason"] == "expect_min"
    upper = result["upper_s"]
    assert isinstance(upper, float) and upper < 60.0
