"""Reading the router's flows from /proc/net/nf_conntrack (lines as the kernel printed them here)."""

from __future__ import annotations

from probe.lab.conntrack import ConntrackFlow, parse, parse_line

TCP = (
    "ipv4     2 tcp      6 4 ESTABLISHED src=198.18.0.2 dst=198.19.0.2 sport=38494 dport=9000 "
    "src=198.19.0.2 dst=198.19.0.1 sport=9000 dport=38494 [ASSURED] mark=0 zone=0 use=2"
)
UDP = (
    "ipv4     2 udp      17 29 src=198.18.0.2 dst=198.19.0.2 sport=55077 dport=9001 [UNREPLIED] "
    "src=198.19.0.2 dst=198.19.0.1 sport=9001 dport=55077 mark=0 zone=0 use=2"
)
ICMP = "ipv4     2 icmp     1 29 src=198.18.0.2 dst=198.19.0.2 type=8 code=0 id=7 src=198.19.0.2 dst=198.19.0.1 type=0"


def test_a_tcp_flow_with_its_state_timer_and_public_port() -> None:
    assert parse_line(TCP) == ConntrackFlow(
        protocol="tcp", timeout_s=4, state="ESTABLISHED",
        original=("198.18.0.2", 38494, "198.19.0.2", 9000), reply=("198.19.0.2", 9000, "198.19.0.1", 38494),
        unreplied=False, assured=True,
    )  # fmt: skip
    flow = parse_line(TCP)
    assert flow is not None and flow.public == ("198.19.0.1", 38494)


def test_a_udp_flow_has_no_state_and_may_be_unreplied() -> None:
    flow = parse_line(UDP)
    assert flow is not None
    assert (flow.protocol, flow.timeout_s, flow.state, flow.unreplied, flow.assured) == ("udp", 29, None, True, False)
    assert flow.original == ("198.18.0.2", 55077, "198.19.0.2", 9001)


def test_lines_without_ports_or_too_short_are_left_out() -> None:
    assert parse_line(ICMP) is None
    assert parse_line("ipv4 2 tcp") is None
    assert [f.protocol for f in parse("\n".join([TCP, ICMP, "", UDP]))] == ["tcp", "udp"]
