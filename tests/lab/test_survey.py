"""survey through the kernel lab: IPv4 through a NAT, IPv6 through a stateful
firewall with another timer, and a port with a timer of its own.

The router keeps state per flow: conntrack's IPv4 NAT forgets established TCP
after V4_T, its IPv6 firewall (no NAT) after V6_T, and IPv4 TCP to PORT_B
after PORT_T (an nftables ``ct timeout`` policy). One natprobe server listens
on all three; the client resolves ``dual.test`` to both of its addresses.
"""

from __future__ import annotations

from probe.testing import KernelNat
from tests.lab.conftest import natprobe_json, natprobe_server

V4_T, V6_T, PORT_T = 4, 6, 2
PORT_A, PORT_B = 4040, 4041


def _lab(kernel_nat: object) -> KernelNat:
    nat: KernelNat = kernel_nat(tcp_timeout=V4_T, ipv6_tcp_timeout=V6_T, port_tcp_timeouts={PORT_B: PORT_T})  # type: ignore[operator]
    nat.client_hosts({"dual.test": [nat.server_ip, nat.server_ip6]})
    return nat


def test_every_path_gets_its_own_bracket_in_about_the_slowest_paths_time(kernel_nat: object) -> None:
    nat = _lab(kernel_nat)
    server = natprobe_server(
        nat, "--tcp", f"{nat.server_ip}:{PORT_A}", "--tcp", f"[{nat.server_ip6}]:{PORT_A}",
        "--tcp", f"{nat.server_ip}:{PORT_B}",
    )  # fmt: skip
    try:
        survey = natprobe_json(nat, "survey", f"tcp://dual.test:{PORT_A}", f"tcp://{nat.server_ip}:{PORT_B}")
    finally:
        server.stop()
    paths = survey["paths"]
    assert [(p["target"], p["family"], p["port"]) for p in paths] == [
        (f"tcp://dual.test:{PORT_A}", 4, PORT_A),
        (f"tcp://dual.test:{PORT_A}", 6, PORT_A),
        (f"tcp://{nat.server_ip}:{PORT_B}", 4, PORT_B),
    ]
    for path, truth in zip(paths, (V4_T, V6_T, PORT_T), strict=True):
        result = path["result"]
        assert path["error"] is None, path["error"]
        assert result["lower_s"] <= truth <= result["upper_s"], (path["family"], path["port"], result["lower_s"])
        assert result["width_s"] <= max(0.02 * truth, 0.5) + 1e-3
        assert result["failure_mode"] == "silent_drop"
    v4, v6, port_b = (p["result"] for p in paths)
    # IPv4 was translated by the NAT; IPv6 crossed the firewall untranslated.
    assert v4["nat"]["detected"] is True and v4["nat"]["observed"].startswith(nat.public_ip + ":")
    assert v6["nat"]["detected"] is False and v6["nat"]["observed"].startswith(f"[{nat.client_ip6}]:")
    assert port_b["nat"]["detected"] is True
    # All at once: every bracket by 1.15 x the longest timer + 3 s.
    assert survey["wall_s"] <= 1.15 * V6_T + 3, survey["wall_s"]
    assert survey["total_s"] < sum(p["result"]["total_s"] for p in paths)


def test_family_picks_one_address_of_a_dual_stack_name(kernel_nat: object) -> None:
    nat = _lab(kernel_nat)
    server = natprobe_server(nat, "--tcp", f"{nat.server_ip}:{PORT_A}", "--tcp", f"[{nat.server_ip6}]:{PORT_A}")
    try:
        for family, observed in (("6", f"[{nat.client_ip6}]"), ("4", nat.public_ip)):
            survey = natprobe_json(nat, "survey", f"tcp://dual.test:{PORT_A}", "--family", family, "--budget", "1s")
            (path,) = survey["paths"]
            assert path["family"] == int(family)
            assert path["result"]["nat"]["observed"].startswith(observed + ":")
    finally:
        server.stop()
