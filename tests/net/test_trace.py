"""The unprivileged trace on loopback, and how it asks a silent hop again."""

from __future__ import annotations

import socket

import pytest

from probe.net import trace as trace_module
from probe.net.trace import Hop, trace


def test_loopback_is_reached_at_the_first_hop() -> None:
    # A bound, non-listening port answers the SYN with RST: reached.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        hops = trace("127.0.0.1", port, max_hops=4, timeout_s=1.0)
    assert len(hops) == 1 and hops[0].reached and hops[0].address == "127.0.0.1" and hops[0].ttl == 1


def test_a_silent_hop_is_asked_three_times_a_second_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hop 1 answers only on the third try (its ICMP was rate-limited), hop 2
    # never, hop 3 is the destination.
    answers = {1: [None, None, "198.18.9.1"], 2: [None, None, None], 3: ["dst"]}
    asked: list[int] = []

    def probe_hop(address: str, port: int, ttl: int, timeout_s: float) -> Hop:
        asked.append(ttl)
        answer = answers[ttl].pop(0)
        return Hop(ttl, address, 0.001, reached=True) if answer == "dst" else Hop(ttl, answer, None)

    slept: list[float] = []
    monkeypatch.setattr(trace_module, "probe_hop", probe_hop)
    hops = trace("198.18.9.9", 1, max_hops=5, sleep=slept.append)
    assert [h.address for h in hops] == ["198.18.9.1", None, "198.18.9.9"]
    assert asked == [1, 1, 1, 2, 2, 2, 3]
    assert slept == [1.0, 1.0, 1.0, 1.0]
