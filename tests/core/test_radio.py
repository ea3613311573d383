"""A phone's cost of a keepalive: radio wake-ups and LTE energy (core/radio.py)."""

from __future__ import annotations

import pytest

from probe.core.model import to_json
from probe.core.plan import PlanInputs, make_plan
from probe.core.radio import LTE_PROMOTION_S, LTE_PROMOTION_W, LTE_TAIL_S, LTE_TAIL_W, radio_cost
from tests.factories import bracket


def test_an_interval_longer_than_the_tail_pays_promotion_and_tail_per_wakeup() -> None:
    cost = radio_cost(240.0)
    assert cost.radio_wakeups_per_day == 360
    per_wakeup = LTE_PROMOTION_S * LTE_PROMOTION_W + LTE_TAIL_S * LTE_TAIL_W
    assert per_wakeup == pytest.approx(12.59, abs=0.01)
    assert cost.lte_energy_j_per_day == round(360 * per_wakeup)


def test_an_interval_within_the_tail_keeps_the_radio_awake_all_day() -> None:
    assert radio_cost(10.0) == radio_cost(LTE_TAIL_S)
    assert radio_cost(10.0).radio_wakeups_per_day == 0
    assert radio_cost(10.0).lte_energy_j_per_day == round(86_400 * LTE_TAIL_W)
    # Just past the tail it sleeps between sends, and costs less than awake all day.
    assert 0 < radio_cost(12.0).lte_energy_j_per_day < radio_cost(10.0).lte_energy_j_per_day


def test_longer_intervals_cost_a_phone_less() -> None:
    costs = [radio_cost(s).lte_energy_j_per_day for s in (15.0, 25.0, 60.0, 240.0, 1800.0)]
    assert costs == sorted(costs, reverse=True)


def test_the_plan_carries_the_radio_cost_of_each_design() -> None:
    plan = to_json(make_plan(PlanInputs(bracket(300.0, 310.0))))
    assert plan["keepalive"]["radio_wakeups_per_day"] == 360
    assert plan["heartbeat"]["radio_wakeups_per_day"] == 360
    assert plan["heartbeat"]["lte_energy_j_per_day"] == radio_cost(240.0).lte_energy_j_per_day
