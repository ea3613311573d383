"""What an operator sees, rendered to a fixed-width console with colour off."""

from __future__ import annotations

import io

from rich.console import Console

from probe.core.after_expiry import AfterExpiry, AfterOutcome
from probe.core.endings import Ending
from probe.core.evidence import Bracket, Evidence, FailureMode, IdleTest, Outcome
from probe.core.hold import HoldResult, WsSession, ws_hold
from probe.core.local import Address, Interface, KeepaliveDefaults, LocalFacts, NatprobeProcess, private_only
from probe.core.locate import ExpiringHop, HopSeen, LocateResult, Round
from probe.core.model import to_json
from probe.core.nat import NatFacts
from probe.core.recommend import recommendations
from probe.core.results import Connections, DiscoverResult
from probe.core.text import printable
from probe.render.check import render_hold
from probe.render.discover import render_discover, timeline
from probe.render.facts import render_local
from tests.render.helpers import sample_discover_result


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, no_color=True, color_system=None, highlight=False, soft_wrap=True), out


_result = sample_discover_result


EXPECTED = """\
natprobe discover tcp://198.18.0.5:4040
  Idle timeout between 4.0s (longest idle that survived) and 4.4s (shortest that failed)
  Estimate: 4.2s  (bracket width 400ms)
  Failure mode: silent_drop - flows were forgotten silently: a NAT or firewall dropping idle state
  Address: local 10.0.0.2:5000, server saw 203.0.113.9:5000 (translated, port preserved)
  Took 7.4s with 5 tests on 57 connections (resolved)
  Timeline (idle time; + survived, x failed; below, a zoom on the bracket)
        0s |               +                +  x   x         x| 6.2s
      3.2s |                    +        x            x       | 5.2s
  After the timeout, when the application sends again:
    idle, nobody spoke: revived: the connection works again when your application next sends, but everything the server pushed during the gap was lost unless its TCP retransmits it in time.
    after a lost push: revived: the connection works again when your application next sends, but everything the server pushed during the gap was lost unless its TCP retransmits it in time. The lost push arrived late, once the mapping was back.
  Server's view: 3 pushes never acknowledged by this side's TCP (a second witness, from the far end, that the flows were dropped)
  Recommended: keep connections busy at least every 3.2s
    Linux, system-wide TCP keepalive (not tried on this path):
      sysctl -w net.ipv4.tcp_keepalive_time=3
      sysctl -w net.ipv4.tcp_keepalive_intvl=1
      sysctl -w net.ipv4.tcp_keepalive_probes=3
    Python, per socket:
      sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
      sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 3)
      sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
      sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    WebSocket: ping every 3.2s (websockets: ping_interval=3.2) (not tried on this path)
  Plan: keep each connection busy at least every 3.2s
    design            kept here  settings                        notices a dead path  packets/day  bytes/day (IPv4)
    kernel keepalive  not tried  idle 3s, then every 1s x 3      after 6.0s                57,600         2,995,200
    heartbeat (idle)  not tried  every 3.2s, answer within 5.0s  after 8.2s                81,000         4,644,000
    On a phone (LTE) the radio is the cost: kernel keepalive keeps the radio awake all day (about 92 kJ), the heartbeat keeps the radio awake all day (about 92 kJ) (docs/plan.md).
    Heartbeats only when idle cost nothing on a connection that carries its own traffic (fixed ones: 81,000 packets/day regardless).
    Server: set TCP_USER_TIMEOUT 30.0s and drop sessions silent for 8.2s; with kernel defaults a session pushed into a dead path is held 15m 24.6s, an idle one until something is written to it.
"""


def test_discover_summary_text() -> None:
    console, out = _console()
    render_discover(_result(), console)
    assert out.getvalue() == EXPECTED


def test_timeline_marks_failures_and_survivals_on_the_axis() -> None:
    tests = [IdleTest(0, 0.0, Outcome.SURVIVED), IdleTest(1, 10.0, Outcome.FAILED, FailureMode.SILENT_DROP)]
    rows = timeline(tests, None, None)
    assert rows[1] == "      0s |+" + " " * 48 + "x| 10.0s"


def test_proxy_failures_recommend_the_proxy_setting() -> None:
    b = Bracket(55.0, 60.0, True, 55.0, 60.0, FailureMode.CLOSED, 60.0)
    rec = to_json(recommendations(b, "closed"))
    assert rec is not None and "proxy_read_timeout" in str(rec["proxy"])
    assert rec["linux_sysctl"] == {  # type: ignore[comparison-overlap]
        "net.ipv4.tcp_keepalive_time": 44, "net.ipv4.tcp_keepalive_intvl": 11, "net.ipv4.tcp_keepalive_probes": 3,
    }  # fmt: skip


def test_remote_text_cannot_reach_the_terminal_raw() -> None:
    hostile = "bye\x1b[2J\x1b]0;owned\x07"
    ws = ws_hold([WsSession(1.0, Ending.CLOSED, printable(hostile), 4000, printable(hostile), 0, None)], None)
    result = HoldResult(
        target="ws://x/", transport="ws", proxy=None, duration_s=60.0, alive_s=1.0, ended=Ending.CLOSED,
        detail=printable(hostile), lasted=False, natprobe_server=False, ws=ws,
    )  # fmt: skip
    console, out = _console()
    render_hold(result, console)
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
    assert "bye\\x1b[2J" in out.getvalue() and "Close code 4000" in out.getvalue()


def test_local_summary_mentions_nat_and_keepalive_defaults() -> None:
    interfaces = [
        Interface("eth0", True, [Address("10.1.2.3", "ipv4", "255.0.0.0", "private")]),
        Interface("lo", True, [Address("127.0.0.1", "ipv4", "255.0.0.0", "loopback")]),
    ]
    facts = LocalFacts(
        platform="Linux",
        interfaces=interfaces,
        default_route_interface="eth0",
        private_only=private_only(interfaces),
        likely_behind_nat=private_only(interfaces),
        keepalive_defaults=KeepaliveDefaults(7200, 75, 9),
        supported_options={"keepalive_idle": True, "tcp_info": False},
        natprobe_sockets=[NatprobeProcess(42, "natprobe discover", 3, {"ESTABLISHED": 3})],
    )
    console, out = _console()
    render_local(facts, console)
    text = out.getvalue()
    assert "eth0 (default route): 10.1.2.3 [private]" in text
    assert "likely behind NAT" in text
    assert "first probe after 2h 00m idle, then every 1m 15.0s, give up after 9 probes" in text
    assert "natprobe pid 42: 3 sockets (3 ESTABLISHED)" in text


def test_locate_summary_names_the_hop_then_shows_the_trace() -> None:
    from probe.render.facts import render_locate

    console, out = _console()
    render_locate(
        LocateResult(
            target="tcp://198.19.0.2:4040",
            hops=[HopSeen(1, "198.18.0.1", 0.0003), HopSeen(2, None, None), HopSeen(3, "198.19.0.2", 0.0001)],
            expiring_hop=ExpiringHop(2, "198.18.1.2", "private"),
            at_destination=False,
            consistent=True,
            reason="the shortest TTL whose probes kept the flow",
            summary="the state that expires is at hop 2 (198.18.1.2, private: a private network on the way)",
            timeout_s=2.0,
            wait_s=3.2,
            probe_interval_s=1,
            rounds=[
                Round(1, 0, False, Outcome.FAILED),
                Round(1, 1, True, Outcome.FAILED),
                Round(1, 2, True, Outcome.SURVIVED),
                Round(1, 3, True, Outcome.SURVIVED),
            ],
            wall_s=5.2,
        ),
        console,
    )
    assert out.getvalue() == (
        "natprobe locate tcp://198.19.0.2:4040\n"
        "  The state that expires is at hop 2 (198.18.1.2, private: a private network on the way).\n"
        "  Timeout 2.0s; each connection idled 3.2s with keepalive probes every 1s limited to its TTL; took 5.2s.\n"
        "    1  198.18.0.1                                0.3 ms      probes to here: failed\n"
        "    2  * (no answer)                                         probes to here: survived  <- state expires here\n"
        "    3  198.19.0.2                                0.1 ms      probes to here: survived\n"
    )


def _udp_result(refresh: bool | None) -> DiscoverResult:
    from probe.core.results import StateResult

    per_state: dict[str, StateResult] = {}
    tests: list[IdleTest] = []
    for conn, (name, timer) in enumerate((("unreplied", 30.0), ("replied", 30.0), ("stream", 120.0))):
        evidence = Evidence()
        evidence.add(IdleTest(conn, timer - 0.4, Outcome.SURVIVED, state=name))
        evidence.add(IdleTest(conn + 10, timer + 0.2, Outcome.FAILED, FailureMode.SILENT_DROP, state=name))
        per_state[name] = StateResult(evidence.bracket(), "resolved", 2)
        tests.extend(evidence.tests)
    return DiscoverResult(
        target="udp://h:4040", transport="udp", bracket=per_state["unreplied"].bracket, tests=tests, wall_s=128.0,
        nat=NatFacts("10.0.0.2:5000", "203.0.113.1:5000", True, True),
        max_idle_s=7800.0, reason="resolved", connections=Connections(95, 235, 31, 31), states=per_state,
        inbound_refresh=refresh, control="tcp://h:4040",
        after_expiry=AfterExpiry(AfterOutcome.REVIVED, False, 0.01, "a new binding"),
    )  # fmt: skip


def test_udp_summary_shows_states_refresh_and_protocol_advice() -> None:
    console, out = _console()
    render_discover(_udp_result(False), console)
    text = out.getvalue()
    assert "on 235 probes (a UDP socket each)" in text
    assert "stream     1m 59.6s - 2m 00.2s" in text
    unreplied = next(line for line in text.splitlines() if line.startswith("    unreplied "))
    assert "29.6s - 30.2s" in unreplied and unreplied.endswith("<- shortest")
    assert "Inbound refresh: no" in text
    assert "After the timeout, the client sends again: revived: a new binding" in text
    assert "WireGuard: PersistentKeepalive = 23" in text
    assert "QUIC: keep-alive PING every 23.0s" in text
    assert "WireGuard PersistentKeepalive (recommended 25 s): keeps this path alive" in text
    assert "QUIC keep-alive (~30 s, RFC 9000 §10.1.2): inside the bracket" in text
    assert "ICE consent freshness (~5 s, RFC 7675): keeps this path alive" in text
    assert "WireGuard keepalive" in text and "packets" in text
    # The timeline is the shortest state's: nothing from the stream state's 2 minutes.
    axis = next(line for line in text.splitlines() if line.strip().startswith("0s |"))
    assert axis.endswith("30.2s")
    for refresh, words in ((True, "Inbound refresh: yes"), (None, "Inbound refresh: not measured")):
        console, out = _console()
        render_discover(_udp_result(refresh), console)
        assert words in out.getvalue()
