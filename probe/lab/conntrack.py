"""A namespace's conntrack table, read the way the kernel shows it.

``/proc/net/nf_conntrack`` lists one flow a line, per network namespace:

    ipv4 2 tcp 6 4 ESTABLISHED src=198.18.0.2 dst=198.19.0.2 sport=38494 dport=9000
        src=198.19.0.2 dst=198.19.0.1 sport=9000 dport=38494 [ASSURED] mark=0 zone=0 use=2

The first ``src/dst/sport/dport`` group is the flow as the inside host sent
it, the second the reply as the router expects it: for a masqueraded flow
its ``dst`` and ``dport`` are the router's outside address and public port.
Reading the file needs no conntrack-tools.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

#: (source, source port, destination, destination port)
Tuple4 = tuple[str, int, str, int]


@dataclass(frozen=True)
class ConntrackFlow:
    protocol: str
    #: Seconds until the router forgets the flow, as the kernel counts them.
    timeout_s: int
    #: TCP's state (ESTABLISHED, TIME_WAIT, ...); None for UDP and others.
    state: str | None
    original: Tuple4
    reply: Tuple4
    #: Nothing came back yet ([UNREPLIED]).
    unreplied: bool
    #: Seen both ways, and so kept under pressure ([ASSURED]).
    assured: bool

    @property
    def public(self) -> tuple[str, int]:
        """The router's outside address and port for this flow."""
        return self.reply[2], self.reply[3]


def _tuple(fields: dict[str, str]) -> Tuple4:
    return fields["src"], int(fields["sport"]), fields["dst"], int(fields["dport"])


def parse_line(line: str) -> ConntrackFlow | None:
    """One line of /proc/net/nf_conntrack; None for a line without ports (ICMP)."""
    words = line.split()
    if len(words) < 6:
        return None
    protocol, timeout = words[2], words[4]
    rest = words[5:]
    state = rest.pop(0) if rest and "=" not in rest[0] and not rest[0].startswith("[") else None
    groups: list[dict[str, str]] = [{}]
    flags: set[str] = set()
    for word in rest:
        if word.startswith("["):
            flags.add(word.strip("[]"))
            continue
        key, _, value = word.partition("=")
        if key in ("src", "dst", "sport", "dport"):
            if key in groups[-1]:
                groups.append({})
            groups[-1][key] = value
    if len(groups) < 2 or any(len(g) < 4 for g in groups[:2]):
        return None
    return ConntrackFlow(
        protocol=protocol,
        timeout_s=int(timeout),
        state=state,
        original=_tuple(groups[0]),
        reply=_tuple(groups[1]),
        unreplied="UNREPLIED" in flags,
        assured="ASSURED" in flags,
    )


def parse(text: str) -> list[ConntrackFlow]:
    return [flow for line in text.splitlines() if (flow := parse_line(line)) is not None]


def flows(namespace: str) -> list[ConntrackFlow]:
    """The flows conntrack tracks in ``namespace`` now (needs root)."""
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "cat", "/proc/net/nf_conntrack"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return parse(out)
