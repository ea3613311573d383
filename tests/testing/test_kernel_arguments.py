"""KernelNat refuses bad IPv6 and per-port timers when made, before any namespace."""

from __future__ import annotations

import pytest

from probe.lab.netns import port_timeout_rules
from probe.testing import KernelNat


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ipv6_tcp_timeout": 0.5}, "ipv6_tcp_timeout must be a whole number of seconds, 1 or more"),
        ({"ipv6_tcp_timeout": True}, "ipv6_tcp_timeout must be a whole number of seconds"),
        ({"port_tcp_timeouts": {5222: 0}}, r"port_tcp_timeouts\[5222\] must be a whole number of seconds"),
        ({"port_tcp_timeouts": {70000: 5}}, "port_tcp_timeouts: ports are 1 to 65535"),
    ],
)
def test_bad_timers_are_one_value_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KernelNat(**kwargs)  # type: ignore[arg-type]


def test_each_port_gets_its_own_conntrack_timeout_policy() -> None:
    rules = port_timeout_rules([(5222, 30), (443, 7)])
    assert 'tcp dport 5222 ct timeout set "port5222"' in rules
    assert 'tcp dport 443 ct timeout set "port443"' in rules
    assert "policy = { established: 30 }" in rules and "policy = { established: 7 }" in rules
    assert rules.count("l3proto ip\n") == 2
