"""UDP through a real kernel NAT: conntrack's own UDP timers, per namespace.

nf_conntrack_udp_timeout = 3 s until a flow has a reply and a packet more
than 2 s after its first, then nf_conntrack_udp_timeout_stream = 6 s. Linux
refreshes a flow on packets in either direction, so inbound refresh is true.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from probe.lab.netns import SERVER_IP
from probe.testing import KernelNat
from tests.lab.conftest import natprobe, natprobe_json, natprobe_server

UDP = f"udp://{SERVER_IP}:4040"
LISTEN = ("--tcp", f"{SERVER_IP}:4040", "--udp", f"{SERVER_IP}:4040")
TIMERS = (3, 6)


@pytest.mark.parametrize("random_ports", [False, True])
def test_discover_measures_each_conntrack_udp_timer(kernel_nat: Callable[..., KernelNat], random_ports: bool) -> None:
    with kernel_nat(60, *TIMERS, random_ports=random_ports) as lab:
        natprobe_server(lab, *LISTEN)
        result = natprobe_json(lab, "discover", UDP)
    states = result["states"]
    for name, timer in (("unreplied", 3.0), ("replied", 3.0), ("stream", 6.0)):
        assert states[name]["lower_s"] <= timer <= states[name]["upper_s"], (name, states[name])
        assert states[name]["failure_mode"] == "silent_drop"
    assert result["upper_s"] == min(s["upper_s"] for s in states.values())
    assert result["inbound_refresh"] is True
    nat = result["nat"]
    assert nat["detected"] is True and nat["observed"].startswith("198.19.0.1:")
    # masquerade keeps the source port when it is free; fully-random never does.
    assert nat["port_preserved"] is (not random_ports)
    # Sent again after the timeout, a datagram gets a new binding: always on a
    # new port with fully-random. With masquerade's default the old port is
    # taken too while the entry that the lost push itself left on the router
    # (server -> router's port, unreplied) lives, so either can be seen.
    assert result["after_expiry"]["outcome"] == "revived"
    assert isinstance(result["after_expiry"]["port_changed"], bool)
    if random_ports:
        assert result["after_expiry"]["port_changed"] is True
    assert result["recommendations"]["wireguard"]["PersistentKeepalive"] == 2
    # Conntrack refreshes a binding on the client's datagrams: a one-way
    # keepalive (WireGuard's) keeps it as well as an answered one (STUN's).
    designs = result["designs"]
    assert designs["client_only"]["kept"] is True and designs["request_response"]["kept"] is True, designs
    assert result["recommendations"]["design"] == "client_only"
    assert result["wall_s"] <= 2.5 + 1.10 * 6 + 2.0 + result["grace_s"] + 1.0


def test_check_tells_the_unreplied_timer_from_the_stream_timer(kernel_nat: Callable[..., KernelNat]) -> None:
    with kernel_nat(60, *TIMERS) as lab:
        natprobe_server(lab, *LISTEN)
        short = natprobe_json(lab, "check", UDP, "--idle", "4", "--udp-state", "unreplied", expect_rc=1)
        stream = natprobe_json(lab, "check", UDP, "--idle", "4", "--udp-state", "stream")
        human = natprobe(lab, "check", UDP, "--idle", "2")
    assert short["passed"] is False and short["failure_mode"] == "silent_drop" and short["push_copies"] == 3
    assert stream["passed"] is True and stream["udp_state"] == "stream"
    assert human.returncode == 0 and "replied" in human.stdout
