"""The planner on UDP probes: one test per probe, idle counted from the binding's
last packet, and the stream state's late start (virtual time)."""

from __future__ import annotations

import pytest

from probe.core.evidence import Outcome
from probe.core.planner import Close, ConnState, Open, Planner, PlannerConfig, Probe
from probe.lab.simnat import DiscoverySim, SimPath, planner_discovery, simulate


def test_a_probe_whose_push_arrived_is_closed_not_reused() -> None:
    planner = Planner(PlannerConfig(reuse=False, max_conns=2))
    actions = planner.start(0.0)
    assert actions == [Open(0)]
    planner.opened(0, 0.5, since=0.2)
    view = planner.conns[0]
    assert view.state is ConnState.IDLE and view.idle_since == 0.2 and view.rx_at == 0.2
    view.state = ConnState.PROBING
    view.probe_at = 3.0
    actions = planner.arrived(0, 2.75, 3.1)
    assert actions[0] == Close(0) and 0 not in planner.conns
    assert planner.evidence.tests[-1].outcome is Outcome.SURVIVED and planner.evidence.tests[-1].idle_s == 2.75


def test_a_reused_connection_stays_in_the_pool() -> None:
    planner = Planner(PlannerConfig(max_conns=2))
    planner.start(0.0)
    planner.opened(0, 0.5, rx_at=0.4)
    assert planner.conns[0].idle_since == 0.5 and planner.conns[0].rx_at == 0.4
    planner.conns[0].state = ConnState.PROBING
    actions = planner.arrived(0, 2.0, 3.0)
    assert Close(0) not in actions and planner.conns[0].state is ConnState.IDLE


def test_a_late_push_also_closes_a_single_use_probe() -> None:
    planner = Planner(PlannerConfig(reuse=False, max_conns=2, grace_s=0.5, linger_s=5.0))
    planner.start(0.0)
    planner.opened(0, 0.1)
    planner.conns[0].state = ConnState.PROBING
    planner.conns[0].probe_at = 4.0
    planner.tick(4.6)  # declared lost, lingers
    assert planner.conns[0].state is ConnState.LINGER
    actions = planner.arrived(0, 3.9, 4.8)
    assert Close(0) in actions and 0 not in planner.conns
    assert planner.evidence.tests[-1].late is True


def test_open_delay_moves_the_scout_schedule() -> None:
    plain = Planner(PlannerConfig(max_conns=2, reuse=False))
    delayed = Planner(PlannerConfig(max_conns=2, reuse=False, open_delay_s=2.5))
    for planner in (plain, delayed):
        planner.start(0.0)
        planner.opened(0, 0.3, since=0.3)
        planner.tick(0.3)
    assert plain.next_scout is not None and delayed.next_scout is not None
    assert delayed.next_scout[1] - plain.next_scout[1] == pytest.approx(2.5)
    probes = [a for a in plain.tick(plain.next_scout[1]) if isinstance(a, Probe)]
    assert probes == [Probe(0)]


@pytest.mark.parametrize("state", ["unreplied", "replied", "stream"])
@pytest.mark.parametrize("timeout", [5.0, 30.0, 120.0])
def test_each_state_finds_its_timer_with_single_use_probes(state: str, timeout: float) -> None:
    delay = 2.5 if state == "stream" else 0.0
    path = SimPath(timeout, udp_state=state, seed=int(timeout))
    # An unreplied binding starts up to an RTT before the server sees it: the
    # failure margin a real discovery charges (Discovery._margin).
    margin = path.rtt_s if state == "unreplied" else 0.0
    planner = Planner(PlannerConfig(reuse=False, max_conns=31, open_delay_s=delay, failure_margin_s=margin))
    result = simulate(planner, path)
    b = result.bracket
    assert result.reason == "resolved"
    assert b.lower is not None and b.upper is not None
    assert b.lower <= timeout <= b.upper
    assert b.upper - b.lower <= max(0.02 * timeout, 0.5) + 1e-6
    # Every probe is tested once: no connection id appears in two tests.
    conns = [t.conn for t in planner.evidence.tests]
    assert len(conns) == len(set(conns))
    assert result.wall_s <= 1.35 * timeout + 2.0 + delay + 1.0


def test_sim_path_refuses_an_unknown_udp_state() -> None:
    with pytest.raises(ValueError, match="unknown UDP state"):
        SimPath(5.0, udp_state="bound")


@pytest.mark.parametrize("margin", [0.0, 0.05])
def test_a_failure_is_charged_the_margin_and_a_survival_is_not(margin: float) -> None:
    planner = Planner(PlannerConfig(reuse=False, max_conns=3, grace_s=0.5, failure_margin_s=margin))
    planner.start(0.0)
    planner.opened(0, 0.1, since=0.1)
    planner.opened(1, 0.1, since=0.1)
    for conn, asked in ((0, 3.1), (1, 4.1)):
        planner.conns[conn].state = ConnState.PROBING
        planner.conns[conn].probe_at = asked
    planner.arrived(0, 3.0, 3.2)
    planner.tick(4.7)  # conn 1's push is declared lost
    survived, failed = planner.evidence.tests
    assert survived.outcome is Outcome.SURVIVED and survived.idle_s == 3.0
    assert failed.outcome is Outcome.FAILED and failed.idle_s == pytest.approx(4.0 + margin)
    # The server's report, arriving after, is charged the margin too.
    planner.pushed(1, 4.02, 4.8)
    assert failed.idle_s == pytest.approx(4.02 + margin)
    assert planner.bracket().upper == pytest.approx(4.02 + margin)


@pytest.mark.parametrize("state", ["replied", "stream"])
def test_the_simulated_server_counts_idle_from_the_echo_it_answered(state: str) -> None:
    # As probe/core/udp_table.py does: the echo arrived one way before its
    # reply reached the client (``idle_since``), and the push left one way
    # after the client asked, so the server's idle is the client's plus an RTT.
    rtt = 0.04
    delay = 2.5 if state == "stream" else 0.0
    config = PlannerConfig(reuse=False, max_conns=8, open_delay_s=delay)
    discovery = planner_discovery(Planner(config), SimPath(20.0, rtt_s=rtt, udp_state=state))
    DiscoverySim(discovery, {state: SimPath(20.0, rtt_s=rtt, udp_state=state)}).run()
    tests = discovery.planners[state].evidence.tests
    survived = [t for t in tests if t.outcome is Outcome.SURVIVED]
    assert survived
    for test in survived:
        assert test.asked_at is not None
        assert test.idle_s == pytest.approx(test.asked_at - test.idle_since + rtt, abs=1e-9)
