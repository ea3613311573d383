"""What a keepalive costs a phone: radio wake-ups, and energy on LTE.

On a phone the cost of a keepalive is not its bytes but the radio: a packet
sent or received after the radio went idle promotes it to the connected
state, and it stays there, drawing high power, for the carrier's tail time
after the last packet. Figures from Huang et al., "A Close Examination of
Performance and Power Characteristics of 4G LTE Networks", MobiSys 2012,
Table 3 (their LTE power model, measured on a commercial network); see
docs/plan.md.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_S = 86_400
#: RRC_IDLE -> RRC_CONNECTED promotion: its duration (s) and power (W).
LTE_PROMOTION_S = 0.260
LTE_PROMOTION_W = 1.210
#: The tail: how long the radio stays connected after the last packet (s), and its power (W).
LTE_TAIL_S = 11.576
LTE_TAIL_W = 1.060


@dataclass(frozen=True)
class RadioCost:
    #: Times a day a design's traffic wakes an idle radio (0: it never idles).
    radio_wakeups_per_day: int
    #: Energy a day on LTE (joules): promotions plus tails, for one connection.
    lte_energy_j_per_day: int


def radio_cost(interval_s: float) -> RadioCost:
    """One send (and its answer, within the tail) every ``interval_s``."""
    sends = DAY_S / interval_s
    if interval_s <= LTE_TAIL_S:
        # Each send comes before the tail ends: the radio never goes idle,
        # and draws tail power all day.
        return RadioCost(0, round(DAY_S * LTE_TAIL_W))
    per_wakeup = LTE_PROMOTION_S * LTE_PROMOTION_W + LTE_TAIL_S * LTE_TAIL_W
    return RadioCost(round(sends), round(sends * per_wakeup))
