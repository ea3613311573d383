"""Application heartbeats, without I/O: when to send, what was answered, what was missed.

Modes (``--heartbeat-mode``), the two ways applications schedule heartbeats:
* ``fixed``: send every ``interval_s`` on a fixed clock, whatever else happens.
* ``idle``: send only after ``interval_s`` without any other traffic.
A heartbeat not answered within ``timeout_s`` ends the session, the way an app
would reconnect.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from probe.core.model import inline

KINDS = ("ping", "message")
MODES = ("fixed", "idle")


@dataclass(frozen=True)
class HeartbeatConfig:
    interval_s: float
    kind: str = "ping"
    mode: str = "fixed"
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"heartbeat kind must be one of {', '.join(KINDS)}")
        if self.mode not in MODES:
            raise ValueError(f"heartbeat mode must be one of {', '.join(MODES)}")
        if self.interval_s <= 0:
            raise ValueError("heartbeat interval must be positive")

    @property
    def answer_timeout_s(self) -> float:
        # Default: an answer must come before the next heartbeat is due, and
        # within 10 s at most.
        return self.timeout_s if self.timeout_s is not None else min(self.interval_s, 10.0)


@dataclass(frozen=True)
class HeartbeatSettings:
    """(schema: hold's ``heartbeat_config``) The heartbeats as configured,
    the answer timeout worked out."""

    interval_s: float
    kind: str
    mode: str
    timeout_s: float


@dataclass(frozen=True)
class HeartbeatStats:
    """What was sent and answered; the round trips are None without an answer."""

    sent: int
    answered: int
    missed: int
    rtt_min_s: float | None = None
    rtt_median_s: float | None = None
    rtt_p95_s: float | None = None
    rtt_max_s: float | None = None

    @property
    def all_answered(self) -> bool:
        return self.answered > 0 and self.missed == 0


@dataclass(frozen=True)
class HeartbeatReport:
    """(schema: check's ``heartbeat``) The settings and what came of them, side by side."""

    settings: HeartbeatSettings = field(metadata=inline())
    stats: HeartbeatStats = field(metadata=inline())


def settings(config: HeartbeatConfig) -> HeartbeatSettings:
    return HeartbeatSettings(config.interval_s, config.kind, config.mode, config.answer_timeout_s)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Heartbeat:
    config: HeartbeatConfig
    started: float
    last_traffic: float = 0.0
    last_sent: float | None = None
    sent_count: int = 0
    #: Heartbeats waiting for an answer: id -> time sent.
    outstanding: dict[int, float] = field(default_factory=dict)
    rtts: list[float] = field(default_factory=list)
    missed: int = 0

    def __post_init__(self) -> None:
        self.last_traffic = self.started

    def due(self) -> float:
        cfg = self.config
        if cfg.mode == "fixed":
            return self.started + (self.sent_count + 1) * cfg.interval_s
        return self.last_traffic + cfg.interval_s

    def deadline(self) -> float | None:
        """When the oldest unanswered heartbeat times out."""
        if not self.outstanding:
            return None
        return min(self.outstanding.values()) + self.config.answer_timeout_s

    def next_wakeup(self) -> float:
        deadline = self.deadline()
        return self.due() if deadline is None else min(self.due(), deadline)

    def send(self, now: float) -> int:
        self.sent_count += 1
        beat = self.sent_count
        self.outstanding[beat] = now
        self.last_sent = now
        self.last_traffic = now
        return beat

    def answered(self, now: float, beat: int | None = None) -> float | None:
        """An answer came; ``beat`` None means "whatever was sent first"."""
        if not self.outstanding:
            return None
        key = min(self.outstanding) if beat is None else beat
        sent = self.outstanding.pop(key, None)
        self.last_traffic = now
        if sent is None:
            return None
        rtt = now - sent
        self.rtts.append(rtt)
        return rtt

    def traffic(self, now: float) -> None:
        self.last_traffic = now

    def timed_out(self, now: float) -> bool:
        deadline = self.deadline()
        if deadline is not None and now >= deadline:
            self.missed += len([t for t in self.outstanding.values() if now >= t + self.config.answer_timeout_s])
            return True
        return False

    def stats(self) -> HeartbeatStats:
        rtts = self.rtts
        if not rtts:
            return HeartbeatStats(self.sent_count, 0, self.missed)
        return HeartbeatStats(
            self.sent_count,
            len(rtts),
            self.missed,
            rtt_min_s=round(min(rtts), 5),
            rtt_median_s=round(statistics.median(rtts), 5),
            rtt_p95_s=round(percentile(rtts, 0.95), 5),
            rtt_max_s=round(max(rtts), 5),
        )

    def report(self) -> HeartbeatReport:
        return HeartbeatReport(settings(self.config), self.stats())
