"""The sans-I/O Discovery: whole runs in virtual time, and each rule around
the planners (pool sizing, "busy", giving up, the kept lost-push connection,
the server's reports), stepped by hand."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from probe.core.commands import (
    Command,
    Finished,
    GiveUp,
    KeepForAfterExpiry,
    Key,
    OpenConnection,
    Recorded,
    Release,
    RequestPush,
    RunFacts,
    Settled,
)
from probe.core.discovery import MAX_OPEN_FAILURES, MIN_POOL, TCP, Discovery, lost_push, timed
from probe.core.evidence import FailureMode, IdleTest, Outcome, Source
from probe.core.model import to_json
from probe.core.nat import UNKNOWN, NatFacts
from probe.core.planner import ConnState, PlannerConfig
from probe.core.survey import PoolShare
from probe.errors import TargetError
from probe.lab.simnat import DiscoverySim, SimPath
from probe.schemas import load
from tests.conftest import REGISTRY

UDP_STATES = ("unreplied", "replied", "stream")
NAT = NatFacts("10.0.0.2:5000", "198.18.0.9:6000", True, False)
FACTS = RunFacts(target="tcp://198.18.0.2:4040", transport="tcp", nat=NAT)


def validate(data: dict[str, object]) -> None:
    jsonschema.Draft202012Validator(load("discover"), registry=REGISTRY).validate(data)


def tcp_run(timeout: float, mode: str = "drop", **cfg: float) -> tuple[Discovery, DiscoverySim]:
    discovery = Discovery.for_tcp(PlannerConfig(**cfg))  # type: ignore[arg-type]
    discovery.configure(0.02, None)
    sim = DiscoverySim(discovery, {TCP: SimPath(timeout, mode=mode, rtt_s=0.02)})
    sim.run()
    return discovery, sim


# Whole runs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "parallel", "factor"), [(7.0, 32, 1.10), (30.0, 32, 1.10), (600.0, 32, 1.25), (600.0, 64, 1.10)]
)
def test_a_whole_tcp_discovery_runs_in_virtual_time(timeout: float, parallel: int, factor: float) -> None:
    # The default 32 meet 1.10 T + 2 s below about 100 s and come up to ~1.21 T
    # above; 64 meet it at every scale (docs/discovery.md, "Why not 32").
    discovery, sim = tcp_run(timeout, max_conns=parallel - 1)
    assert isinstance(sim.commands[0], OpenConnection)
    bracket = discovery.bracket()
    assert bracket.lower is not None and bracket.upper is not None
    assert bracket.lower <= timeout <= bracket.upper
    assert discovery.settled == sim.now <= factor * timeout + 2 + discovery.grace_s
    assert sum(isinstance(c, Settled) for c in sim.commands) == 1
    data = discovery.result(sim.now, FACTS).to_json()
    validate(data)
    assert data["reason"] == "resolved" and data["width_s"] <= data["target_width_s"] + 1e-3
    assert data["wall_s"] == pytest.approx(sim.now, abs=0.001)
    # Every connection held at once, within what was asked plus the control one.
    assert data["connections"]["max_open"] <= parallel
    assert data["connections"]["asked"] == parallel - 1 and data["connections"]["pool"] == parallel - 3
    assert data["states"] is None and data["server_view"] == {"unacknowledged_pushes": 0}
    assert len(data["probes"]) == sum(isinstance(c, Recorded) for c in sim.commands) > 3


def test_a_tcp_run_keeps_only_its_newest_lost_push_connection() -> None:
    discovery, sim = tcp_run(20.0, mode="drop")
    kept = [c.key for c in sim.commands if isinstance(c, KeepForAfterExpiry)]
    assert kept and discovery.kept == kept[-1]
    assert lost_push(discovery.last_test(kept[-1]))
    released = {c.key for c in sim.commands if isinstance(c, Release)}
    # Every one kept before the newest was released when it was replaced.
    assert set(kept[:-1]) <= released and kept[-1] not in released
    assert discovery.kept in discovery.records


def test_without_after_expiry_a_lost_push_connection_is_released() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(), after_expiry=False)
    discovery.configure(0.02, None)
    sim = DiscoverySim(discovery, {TCP: SimPath(20.0, rtt_s=0.02)})
    sim.run()
    assert not any(isinstance(c, KeepForAfterExpiry) for c in sim.commands)
    assert discovery.kept is None and any(lost_push(t) for t in discovery.planners[TCP].evidence.tests)


@pytest.mark.parametrize("mode", ["reset", "close"])
def test_a_tcp_run_through_a_path_that_tells_keeps_nothing(mode: str) -> None:
    discovery, _ = tcp_run(30.0, mode=mode)
    assert discovery.kept is None
    assert discovery.bracket().failure_mode is FailureMode(mode if mode == "reset" else "closed")


@pytest.mark.parametrize(("pool", "factor"), [(31, 1.75), (63, 1.15)])
def test_a_whole_udp_discovery_runs_in_virtual_time(pool: int, factor: float) -> None:
    # 31 probes per state (the default --parallel 96) bracket as well as 63
    # (--parallel 191), later where timers are alike and under a minute: the
    # stream state's 25 s comes at 1.7 T (docs/discovery.md, "UDP probes").
    timeouts = {"unreplied": 5.0, "replied": 12.0, "stream": 25.0}
    discovery = Discovery.for_udp(PlannerConfig(max_conns=pool), UDP_STATES, 2.5)
    discovery.configure(0.02, None)
    paths = {s: SimPath(t, udp_state=s, rtt_s=0.02, seed=int(t)) for s, t in timeouts.items()}
    sim = DiscoverySim(discovery, paths)
    sim.run()
    for state, timeout in timeouts.items():
        b = discovery.planners[state].bracket()
        assert b.lower is not None and b.upper is not None and b.lower <= timeout <= b.upper, state
    assert discovery.shortest() == "unreplied"
    assert discovery.settled == sim.now <= factor * 25.0 + 2 + 2.5
    # Each flow state's planner finished once, and each test says its state.
    assert sorted(c.state for c in sim.commands if isinstance(c, Finished)) == sorted(UDP_STATES)
    assert {c.state for c in sim.commands if isinstance(c, Recorded)} == set(UDP_STATES)
    # A UDP probe is used once: never pushed on twice.
    pushed = [c.key for c in sim.commands if isinstance(c, RequestPush)]
    assert len(pushed) == len(set(pushed))
    facts = RunFacts(target="udp://198.18.0.2:4040", transport="udp", nat=NAT, side_connections=2)
    data = discovery.result(sim.now, facts).to_json()
    validate(data)
    assert data["shortest_state"] == "unreplied"
    assert data["upper_s"] == data["states"]["unreplied"]["upper_s"]
    assert {p["state"] for p in data["probes"]} == set(UDP_STATES)
    assert data["server_view"] == {}
    stats = [p.stats for p in discovery.planners.values()]
    # Held at once: the three planners' probes together at their peak (each
    # planner's own peak may come at another time) and the kept one.
    held = data["connections"]["max_open"] - 2
    assert max(s.max_open for s in stats) <= held <= sum(s.max_open for s in stats) + 1
    assert data["connections"]["opened"] == sum(s.opened for s in stats) + 2


def test_the_stream_state_waits_for_its_second_exchange() -> None:
    discovery = Discovery.for_udp(PlannerConfig(), UDP_STATES, 2.5)
    assert discovery.planners["stream"].config.open_delay_s == 2.5
    assert discovery.planners["replied"].config.open_delay_s == PlannerConfig().open_delay_s
    assert all(not p.config.reuse for p in discovery.planners.values())
    assert discovery.udp and not Discovery.for_tcp(PlannerConfig()).udp


# Stepped by hand ----------------------------------------------------------------


def started(discovery: Discovery, now: float = 0.0) -> list[OpenConnection]:
    return [c for c in discovery.start(now) if isinstance(c, OpenConnection)]


def opening(discovery: Discovery, now: float) -> tuple[Key, float]:
    """A connection the planner is opening, waiting for one if need be."""
    for _ in range(100):
        for key in discovery.records:
            if discovery.planners[key[0]].conns[key[1]].state is ConnState.OPENING:
                return key, now
        wake = discovery.next_wakeup()
        now = wake if wake is not None and wake > now else now + 0.1
        discovery.tick(now)
    raise AssertionError("the planner opens nothing")


def fail_opens(discovery: Discovery, count: int, busy: bool = False) -> list[Command]:
    now, out = 0.0, []
    discovery.start(now)
    for _ in range(count):
        key, now = opening(discovery, now)
        out = discovery.open_failed(key, now, busy=busy)
    return out


def test_open_failures_give_up_after_a_run_of_them() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=4))
    assert GiveUp() not in fail_opens(discovery, MAX_OPEN_FAILURES - 1)
    key, now = opening(discovery, 1.0)
    assert discovery.open_failed(key, now) == [GiveUp()]


def test_udp_gives_up_after_a_run_per_flow_state() -> None:
    discovery = Discovery.for_udp(PlannerConfig(), UDP_STATES, 2.5)
    assert GiveUp() not in fail_opens(discovery, 3 * MAX_OPEN_FAILURES - 1)
    key, now = opening(discovery, 1.0)
    assert discovery.open_failed(key, now) == [GiveUp()]


def test_a_success_starts_the_count_of_failures_again() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=4))
    fail_opens(discovery, MAX_OPEN_FAILURES - 1)
    key, now = opening(discovery, 1.0)
    discovery.opened(key, now, session="s1")
    key, now = opening(discovery, now)
    assert GiveUp() not in discovery.open_failed(key, now)


def test_busy_shrinks_the_pool_instead_of_counting_as_a_failure() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=10))
    assert discovery.pool == 8 and not discovery.limited
    out = fail_opens(discovery, 1, busy=True)
    assert discovery.limited and MIN_POOL <= discovery.pool < 8
    assert GiveUp() not in out
    # Shrinking as far as it goes takes no more "busy" than the pool had,
    # and none of them counts as a failure.
    now = 1.0
    for _ in range(10):
        if discovery.pool == MIN_POOL:
            break
        key, now = opening(discovery, now)
        assert GiveUp() not in discovery.open_failed(key, now, busy=True)
    assert discovery.pool == MIN_POOL
    # Down to the fewest the planner works with, "busy" is a failure like any.
    for _ in range(MAX_OPEN_FAILURES - 1):
        key, now = opening(discovery, now)
        assert GiveUp() not in discovery.open_failed(key, now, busy=True)
    key, now = opening(discovery, now)
    assert discovery.open_failed(key, now, busy=True) == [GiveUp()]


def test_busy_on_one_udp_state_shrinks_that_state_only() -> None:
    discovery = Discovery.for_udp(PlannerConfig(max_conns=10), UDP_STATES, 2.5)
    discovery.start(0.0)
    key, now = opening(discovery, 0.0)
    discovery.open_failed(key, now, busy=True)
    sizes = {s: p.config.max_conns for s, p in discovery.planners.items()}
    assert sizes[key[0]] < 10 and [v for s, v in sizes.items() if s != key[0]] == [10, 10]
    assert discovery.limited


def test_the_pool_fits_the_servers_limit_for_this_address() -> None:
    discovery = Discovery.for_tcp(PlannerConfig())
    limits = {"per_ip": 40, "per_ip_free": 30, "sessions_free": 200, "note": "x"}
    assert discovery.size_pool(limits, "h:1") is True
    # One for the quiet connection of the after-expiry test, one for the kept one.
    assert discovery.pool == 28 and discovery.limited
    assert discovery.server_limits == {"per_ip": 40, "per_ip_free": 30, "sessions_free": 200}
    assert discovery.asked == 31


def test_the_tightest_of_the_limits_counts() -> None:
    discovery = Discovery.for_tcp(PlannerConfig())
    discovery.size_pool({"per_ip_free": 50, "sessions_free": 8}, "h:1")
    assert discovery.pool == 6


def test_a_server_without_limits_leaves_the_pool_alone() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=20))
    assert discovery.size_pool(None, "h:1") is True
    assert discovery.pool == 18 and not discovery.limited and discovery.server_limits is None
    assert Discovery.for_tcp(PlannerConfig(), after_expiry=False).size_pool(None, "h:1") is False
    assert discovery.size_pool({"per_ip_free": 100}, "h:1") is True and not discovery.limited


def test_too_little_room_skips_the_quiet_connection_then_refuses() -> None:
    discovery = Discovery.for_tcp(PlannerConfig())
    assert discovery.size_pool({"per_ip_free": 2}, "h:1") is False
    assert discovery.pool == 2
    with pytest.raises(TargetError, match="allows only 1 more") as err:
        Discovery.for_tcp(PlannerConfig()).size_pool({"per_ip_free": 1}, "h:1")
    assert err.value.code == "busy"


def test_runs_of_a_survey_share_the_servers_limit() -> None:
    share = PoolShare(runs=2)
    first, second = Discovery.for_tcp(PlannerConfig()), Discovery.for_tcp(PlannerConfig())
    first.size_pool({"per_ip_free": 40}, "h:1", share, ("i", "a"))
    second.size_pool({"per_ip_free": 40}, "h:1", share, ("i", "a"))
    assert first.pool + 1 + second.pool + 1 <= 40
    first.release_share()
    assert len(share.claims) == 1
    first.release_share()  # twice is harmless
    assert len(share.claims) == 1


def test_pushes_carry_the_session_and_open_now_counts_sessions() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=2))
    opens = started(discovery)
    assert discovery.open_now() == 0
    for n, command in enumerate(opens):
        discovery.opened(command.key, 0.1, session=f"s{n}", observed="203.0.113.1:1")
    discovery.quiet_opened(0.0, "203.0.113.1:2")
    assert discovery.open_now() == len(opens) + 1
    pushes: list[RequestPush] = []
    now = 0.1
    while not pushes and now < 100:
        now = discovery.next_wakeup() or now + 1
        pushes = [c for c in discovery.tick(now) if isinstance(c, RequestPush)]
    assert pushes and pushes[0].session == f"s{pushes[0].key[1]}"
    assert pushes[0].age_s == pytest.approx(now - 0.1)


def test_a_push_the_server_could_not_send_is_a_silent_death_on_tcp() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=2))
    key = started(discovery)[0].key
    discovery.opened(key, 0.1, session="s0")
    out = discovery.not_pushed(key, 5.0)
    assert out[0] == Release(key, "s0")
    tests = [c.test for c in out if isinstance(c, Recorded)]
    assert tests and tests[0].outcome is Outcome.FAILED and tests[0].failure_mode is FailureMode.SILENT_DROP
    assert key not in discovery.records


def test_a_push_the_server_could_not_send_is_no_test_on_udp() -> None:
    discovery = Discovery.for_udp(PlannerConfig(), ("replied",), 2.5)
    key = started(discovery)[0].key
    discovery.opened(key, 0.1, session="ab")
    out = discovery.not_pushed(key, 5.0)
    assert out[0] == Release(key, "ab")
    assert not any(isinstance(c, Recorded) for c in out)


def test_a_udp_push_counts_once_whatever_its_copies() -> None:
    discovery = Discovery.for_udp(PlannerConfig(), ("replied",), 2.5)
    key = started(discovery)[0].key
    discovery.opened(key, 0.0, session="ab")
    discovery.pushed(key, 3.0, 3.01)
    first = discovery.arrived(key, None, 3.02)
    tests = [c.test for c in first if isinstance(c, Recorded)]
    # The report's idle, not the client's guess.
    assert [t.idle_s for t in tests] == [3.0] and tests[0].outcome is Outcome.SURVIVED
    assert discovery.arrived(key, None, 3.03) == []


def test_tcp_pushes_may_arrive_many_times() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=2))
    key = started(discovery)[0].key
    discovery.opened(key, 0.0, session="s")
    first = [c for c in discovery.arrived(key, 2.0, 2.0) if isinstance(c, Recorded)]
    second = [c for c in discovery.arrived(key, 1.0, 3.0) if isinstance(c, Recorded)]
    assert len(first) == len(second) == 1 and first[0].state is None


def test_server_reports_are_waited_for_until_due() -> None:
    discovery, sim = tcp_run(20.0, mode="drop")
    lost = discovery.lost_tests()
    assert lost
    due = discovery.reports_due(1.0)
    last = max(t.asked_at or 0.0 for t in lost.values())
    assert due == pytest.approx(last + 1.0 + 2 * 0.02 + 0.25)
    assert discovery.server_report("nobody") is False
    for key in lost:
        assert discovery.server_report(f"{key[0]}.{key[1]}") is True
    assert discovery.reports_due(1.0) is None
    data = discovery.result(sim.now, FACTS).to_json()
    assert data["server_view"]["unacknowledged_pushes"] == len(lost)


def test_no_lost_push_no_wait() -> None:
    discovery, _ = tcp_run(30.0, mode="reset")
    assert discovery.reports_due(1.0) is None


def test_forget_kept_drops_the_record() -> None:
    discovery, _ = tcp_run(20.0)
    kept = discovery.kept
    assert kept is not None
    discovery.forget_kept()
    assert discovery.kept is None and kept not in discovery.records
    discovery.forget_kept()
    assert discovery.kept is None


def test_progress_has_one_block_per_flow_state() -> None:
    udp = Discovery.for_udp(PlannerConfig(), UDP_STATES, 2.5)
    udp.start(10.0)
    view = udp.progress("udp://h:1", 12.5)
    assert [s.state for s in view.states] == list(UDP_STATES)
    assert view.elapsed_s == 2.5 and view.target == "udp://h:1"
    tcp = Discovery.for_tcp(PlannerConfig())
    assert [s.state for s in tcp.progress("tcp://h:1", 3.0).states] == [None]
    assert tcp.progress("tcp://h:1", 3.0).elapsed_s == 0.0


def test_an_interrupted_result_says_so_for_every_state() -> None:
    discovery = Discovery.for_udp(PlannerConfig(), UDP_STATES, 2.5)
    discovery.start(0.0)
    facts = RunFacts(target="udp://h:1", transport="udp", nat=UNKNOWN, interrupted=True)
    data = discovery.result(4.0, facts).to_json()
    assert data["reason"] == "interrupted" and data["interrupted"] is True
    assert {s["reason"] for s in data["states"].values()} == {"interrupted"}
    assert data["wall_s"] == data["total_s"] == 4.0
    unfinished = discovery.result(4.0, RunFacts(target="udp://h:1", transport="udp", nat=UNKNOWN)).to_json()
    assert unfinished["reason"] == "incomplete"


def test_configure_times_the_planners_for_the_rtt() -> None:
    discovery = Discovery.for_udp(PlannerConfig(), UDP_STATES, 2.5)
    discovery._limit(9)
    discovery.configure(0.3, None)
    for planner in discovery.planners.values():
        assert planner.config.grace_s == pytest.approx(1.6) and planner.config.max_conns == 9
    assert discovery.grace_s == pytest.approx(1.6) and discovery.pool == 9
    discovery.configure(0.1, 2.0)
    assert discovery.grace_s == 2.0


def test_timed_grace_and_suspicion() -> None:
    cfg = PlannerConfig(grace_s=0.5, suspect_s=0.05)
    fast = timed(cfg, 0.001, None, 7)
    assert fast.grace_s == 0.5 and fast.suspect_s == pytest.approx(0.05) and fast.max_conns == 7
    slow = timed(cfg, 0.3, None, 7)
    assert slow.grace_s == pytest.approx(1.6) and slow.suspect_s == pytest.approx(0.8)
    assert timed(cfg, 0.3, 3.0, 7).grace_s == 3.0


def test_lost_push_means_a_deadline_failure() -> None:
    assert lost_push(IdleTest(1, 5.0, Outcome.FAILED, source=Source.DEADLINE))
    assert not lost_push(IdleTest(1, 5.0, Outcome.FAILED, source=Source.DEATH))
    assert not lost_push(IdleTest(1, 5.0, Outcome.SURVIVED, source=Source.DEADLINE))
    assert not lost_push(None)


def test_the_result_carries_what_the_transport_learned() -> None:
    discovery, sim = tcp_run(7.0)
    facts = RunFacts(
        target="wss://198.18.0.2:8443/ws", transport="websocket", nat=NAT, server="natprobe 9", rtt_s=0.04,
        ip_version=6, tls=True, proxy="socks5://198.18.0.3:1080", after_expiry={"outcome": "reset"},
        side_connections=3, opened=99,
    )  # fmt: skip
    result = discovery.result(sim.now + 2.0, facts)
    data = result.to_json()
    assert (data["target"], data["transport"], data["server"], data["proxy"]) == (
        "wss://198.18.0.2:8443/ws", "websocket", "natprobe 9", "socks5://198.18.0.3:1080"
    )  # fmt: skip
    assert data["rtt_s"] == 0.04 and result.ip_version == 6 and result.tls is True
    assert data["after_expiry"] == {"outcome": "reset"} and data["nat"] == to_json(NAT)
    assert data["total_s"] == pytest.approx(sim.now + 2.0, abs=0.001)
    assert data["wall_s"] == pytest.approx(sim.now, abs=0.001)
    assert data["grace_s"] == pytest.approx(discovery.grace_s, abs=0.001)
    assert data["max_idle_s"] == 7800.0 and data["interrupted"] is False
    stats = discovery.planners[TCP].stats
    assert data["connections"]["opened"] == 99
    assert data["connections"]["max_open"] == stats.max_open + 3
    assert data["target_width_s"] == pytest.approx(discovery.planners[TCP].target_width(discovery.bracket()), abs=1e-3)
    udp = Discovery.for_udp(PlannerConfig(), ("replied",), 2.5)
    udp_data = udp.result(1.0, RunFacts("udp://h:1", "udp", NAT, control="tcp://h:2", inbound_refresh=True)).to_json()
    assert udp_data["control"] == "tcp://h:2" and udp_data["inbound_refresh"] is True


def test_a_result_before_the_start_took_no_time() -> None:
    data = Discovery.for_tcp(PlannerConfig()).result(50.0, FACTS).to_json()
    assert data["wall_s"] == 0.0 and data["total_s"] == 0.0 and data["reason"] == "incomplete"
    assert data["connections"]["opened"] == 1 and data["connections"]["max_open"] == 1


def test_records_follow_the_connections_and_releases_name_their_sessions() -> None:
    discovery, sim = tcp_run(12.0)
    open_now = {(TCP, conn) for conn in discovery.planners[TCP].conns}
    kept = {discovery.kept} if discovery.kept is not None else set()
    assert set(discovery.records) == open_now | kept
    releases = [c for c in sim.commands if isinstance(c, Release)]
    assert releases and all(c.session == f"{c.key[0]}.{c.key[1]}" for c in releases)


def test_busy_shrinks_the_pool_to_one_below_what_is_open() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=10))
    discovery.start(0.0)
    key, now = opening(discovery, 0.0)
    known = len(discovery.planners[TCP].conns)
    discovery.open_failed(key, now, busy=True)
    assert discovery.pool == max(MIN_POOL, min(10, known) - 1)


def test_after_a_success_it_takes_a_whole_new_run_of_failures_to_give_up() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=4))
    fail_opens(discovery, MAX_OPEN_FAILURES - 1)
    key, now = opening(discovery, 1.0)
    discovery.opened(key, now, session="s1")
    for _ in range(MAX_OPEN_FAILURES - 1):
        key, now = opening(discovery, now)
        assert GiveUp() not in discovery.open_failed(key, now)
    key, now = opening(discovery, now)
    assert discovery.open_failed(key, now) == [GiveUp()]
    assert key not in discovery.records


@pytest.mark.parametrize(
    ("asked", "after_expiry", "pool", "quiet", "kept"),
    [(63, True, 61, True, True), (63, False, 63, False, False), (4, True, 2, True, True),
     (3, True, 2, True, False), (2, True, 2, False, False)],
)  # fmt: skip
def test_the_after_expiry_connections_count_against_what_was_asked(
    asked: int, after_expiry: bool, pool: int, quiet: bool, kept: bool
) -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=asked), after_expiry=after_expiry)
    assert (discovery.pool, discovery.want_quiet, discovery.keep_lost) == (pool, quiet, kept)
    assert discovery.asked == asked


def test_max_open_counts_the_kept_and_the_quiet_connection() -> None:
    discovery = Discovery.for_tcp(PlannerConfig())
    discovery.configure(0.02, None)
    discovery.quiet_opened(0.0, "198.18.0.9:7")
    sim = DiscoverySim(discovery, {TCP: SimPath(20.0, rtt_s=0.02)})
    sim.run()
    assert discovery.kept is not None
    held = discovery.result(sim.now, FACTS).connections.max_open
    # The control and the quiet connection beside the planner's, never more
    # than asked and the control connection.
    assert discovery.planners[TCP].stats.max_open + 2 <= held <= 32


def test_a_connection_that_died_is_released_and_forgotten() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=4))
    discovery.start(0.0)
    key, now = opening(discovery, 0.0)
    discovery.opened(key, now, session="s9")
    out = discovery.ended(key, FailureMode.RESET, now + 5.0)
    assert out[0] == Release(key, "s9") and key not in discovery.records
    # Told twice (the reader and the server's report), it is released once.
    assert not any(isinstance(c, Release) for c in discovery.ended(key, FailureMode.RESET, now + 6.0))
    assert discovery.open_now() == 0


class FixingSim(DiscoverySim):
    """Fixes the first kept connection, as a run whose after-expiry test starts on it."""

    def _apply(self, commands: list[Command]) -> None:
        super()._apply(commands)
        if self.discovery.kept is not None:
            self.discovery.kept_fixed = True


def test_once_the_test_speaks_on_the_kept_connection_newer_lost_ones_are_released() -> None:
    # A short linger: each lost-push connection is closed soon after its
    # deadline, not all at once when the planner finishes.
    discovery = Discovery.for_tcp(PlannerConfig(linger_s=0.05))
    discovery.configure(0.02, None)
    sim = FixingSim(discovery, {TCP: SimPath(20.0, rtt_s=0.02)})
    sim.run()
    kept = [c.key for c in sim.commands if isinstance(c, KeepForAfterExpiry)]
    assert len(kept) == 1 and discovery.kept == kept[0]
    later_lost = [k for k, t in discovery.lost_tests().items() if k != kept[0]]
    released = {c.key for c in sim.commands if isinstance(c, Release)}
    assert later_lost and set(later_lost) <= released


def reported(discovery: Discovery, key: Key, session: str, **report: Any) -> None:
    discovery.opened(key, 0.0, session=session)
    assert discovery.server_report(session, **report)


def test_a_report_of_an_ended_server_side_means_listening_one_grace() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=4))
    discovery.configure(0.05, None)
    discovery.start(0.0)
    key, _ = opening(discovery, 0.0)
    reported(discovery, key, "s1", now=10.0, ended=True)
    assert discovery.lost_push_listen(key, 11.0) == discovery.grace_s
    assert key in discovery.unacked and key not in discovery.retransmits


def test_a_report_of_the_next_retransmission_sets_how_long_to_listen() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=4))
    discovery.configure(0.05, None)
    discovery.start(0.0)
    key, _ = opening(discovery, 0.0)
    # Reported at 10.0: sent again 0.3 s later, then after 1.6 s, then 3.2 s.
    reported(discovery, key, "s1", now=10.0, retransmit_in_s=0.3, rto_s=0.8)
    assert discovery.retransmission_after(key, 10.1) == pytest.approx(10.3)
    assert discovery.retransmission_after(key, 10.3) == pytest.approx(10.3)
    assert discovery.retransmission_after(key, 10.31) == pytest.approx(11.9)
    assert discovery.retransmission_after(key, 12.0) == pytest.approx(15.1)
    margin = 2 * 0.05 + 0.25
    assert discovery.lost_push_listen(key, 10.1) == pytest.approx(0.2 + margin)
    assert discovery.lost_push_listen(key, 11.0) == pytest.approx(0.9 + margin)
    # Past every retransmission the kernel makes: nothing to wait for.
    assert discovery.retransmission_after(key, 1e9) is None


def test_a_report_without_the_servers_tcp_state_leaves_the_default_wait() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=4))
    discovery.start(0.0)
    key, _ = opening(discovery, 0.0)
    reported(discovery, key, "s1", now=10.0)
    assert discovery.lost_push_listen(key, 10.5) is None
    reported(discovery, key, "s1", now=10.0, retransmit_in_s=0.3, rto_s=0.0)
    assert discovery.lost_push_listen(key, 10.5) is None
    other = (TCP, 999)
    assert discovery.lost_push_listen(other, 10.5) is None and discovery.retransmission_after(other, 1.0) is None


def test_a_kept_connection_the_server_reported_on_is_kept_over_a_newer_one() -> None:
    discovery = Discovery.for_tcp(PlannerConfig(linger_s=0.05))
    discovery.configure(0.02, None)
    sim = DiscoverySim(discovery, {TCP: SimPath(20.0, rtt_s=0.02)})
    sim.run()
    first_kept = next(c.key for c in sim.commands if isinstance(c, KeepForAfterExpiry))
    # The same run again, with a report on the first connection kept.
    again = Discovery.for_tcp(PlannerConfig(linger_s=0.05))
    again.configure(0.02, None)

    class Reporting(DiscoverySim):
        def _apply(self, commands: list[Command]) -> None:
            super()._apply(commands)
            for c in commands:
                if isinstance(c, KeepForAfterExpiry) and c.key == first_kept:
                    self.discovery.server_report(f"{c.key[0]}.{c.key[1]}", ended=True)

    replay = Reporting(again, {TCP: SimPath(20.0, rtt_s=0.02)})
    replay.run()
    assert again.kept == first_kept != discovery.kept


@pytest.mark.parametrize("pool", [31, 63])
def test_every_udp_state_brackets_its_own_timer_exactly(pool: int) -> None:
    # The linux-conntrack profile of benchmarks/discovery.py. A replied or
    # stream probe's idle counts, as the real server counts it, from the
    # echo it answered; an unreplied one's from its hello, which bound the
    # flow one way earlier at a NAT by the client, so its failures are
    # charged one RTT more (PlannerConfig.failure_margin_s).
    timeouts = {"unreplied": 30.0, "replied": 30.0, "stream": 120.0}
    discovery = Discovery.for_udp(PlannerConfig(max_conns=pool), UDP_STATES, 2.5)
    discovery.configure(0.02, 1.0)
    paths = {s: SimPath(t, udp_state=s, rtt_s=0.02, seed=int(t) + len(s)) for s, t in timeouts.items()}
    DiscoverySim(discovery, paths).run()
    for state, timeout in timeouts.items():
        b = discovery.planners[state].bracket()
        assert b.lower is not None and b.upper is not None, state
        assert b.lower <= timeout <= b.upper, (state, b.lower, b.upper)
        assert b.upper - b.lower <= max(0.02 * timeout, 0.5), state
        # Every test agrees with the exact timer: none understated.
        for test in discovery.planners[state].evidence.tests:
            assert (test.idle_s <= timeout) is (test.outcome is Outcome.SURVIVED), (state, test)


def test_only_an_unreplied_probes_failure_is_charged_the_rtt() -> None:
    discovery = Discovery.for_udp(PlannerConfig(), UDP_STATES, 2.5)
    discovery.configure(0.04, None)
    margins = {s: p.config.failure_margin_s for s, p in discovery.planners.items()}
    assert margins == {"unreplied": 0.04, "replied": 0.0, "stream": 0.0}
    tcp = Discovery.for_tcp(PlannerConfig())
    tcp.configure(0.04, None)
    assert tcp.planners[TCP].config.failure_margin_s == 0.0


@pytest.mark.parametrize(
    ("limits", "pool", "designs"),
    [
        (None, 18, 5),  # no limits told: every design connection
        ({"per_ip_free": 100}, 18, 5),
        # 22 free: the control is counted already; quiet and kept 1 each, the pool 18, 2 left.
        ({"per_ip_free": 22}, 18, 2),
        ({"per_ip_free": 50, "sessions_free": 21}, 18, 1),
        # Too few for the pool: the bracket comes first, no design connection.
        ({"per_ip_free": 15}, 13, 0),
    ],
)
def test_design_connections_get_what_the_pool_leaves_of_the_servers_limits(
    limits: dict[str, int] | None, pool: int, designs: int
) -> None:
    discovery = Discovery.for_tcp(PlannerConfig(max_conns=20), designs=5)
    assert discovery.want_designs == 5 and discovery.design_room == 5
    discovery.size_pool(limits, "h:1")
    assert discovery.pool == pool and discovery.design_room == designs
