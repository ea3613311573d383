"""``natprobe exporter``: run probes on their schedules, serve the last results.

A check that idles for minutes cannot run inside a Prometheus scrape (10 s
by default), so, as Prometheus advises for slow measurements, probes run on
their own schedule and ``/metrics`` serves what they last found.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable

from probe import __version__
from probe.core.exporter_config import ExporterConfig, JobSpec
from probe.core.heartbeat import HeartbeatConfig
from probe.core.keepalive import KeepaliveSettings
from probe.core.metrics import Family, ProbeResult, ProbeState, families
from probe.core.planner import PlannerConfig
from probe.core.proxy import resolve_proxy
from probe.core.targets import Scheme, Target, control_for, format_address, parse_target
from probe.errors import NatprobeError, TargetError
from probe.net.dial import Endpoint
from probe.net.ws_client import WsOptions, parse_header
from probe.run.check import CheckOptions, run_check
from probe.run.check_udp import UdpCheckOptions, run_check_udp
from probe.run.jobs import DEFAULT_MAX_IDLE_S, DiscoverJob, discovery
from probe.run.prometheus import exposition
from probe.run.survey import SurveyOptions, run_survey

log = logging.getLogger("natprobe.exporter")

#: The longest a scrape request may take to arrive.
REQUEST_TIMEOUT_S = 5.0


def check_options(spec: JobSpec) -> CheckOptions:
    o = spec.options
    beat = None
    if "heartbeat" in o:
        beat = HeartbeatConfig(
            o["heartbeat"],
            kind=o.get("heartbeat_kind", "ping"),
            mode=o.get("heartbeat_mode", "fixed"),
            timeout_s=o.get("heartbeat_timeout"),
        )
    return CheckOptions(
        endpoint=_endpoint(spec, parse_target(spec.target)),
        idle_s=o["idle"],
        keepalive=KeepaliveSettings(
            idle_s=o.get("keepalive_idle"),
            interval_s=o.get("keepalive_interval"),
            count=o.get("keepalive_count"),
            user_timeout_s=o.get("user_timeout"),
        ),
        grace_s=o.get("grace", 1.0),
        heartbeat=beat,
    )


def _planner(spec: JobSpec) -> PlannerConfig:
    o = spec.options
    return PlannerConfig(
        max_idle_s=o.get("max_idle", DEFAULT_MAX_IDLE_S),
        resolution_s=o.get("resolution"),
        budget_s=o.get("budget"),
        expect_min_s=o.get("expect_min"),
    )


def discover_job(spec: JobSpec) -> DiscoverJob:
    target = parse_target(spec.target, ("tcp", "udp", "ws", "wss"))
    control = _udp(spec)[1] if target.scheme is Scheme.UDP else None
    o = spec.options
    return DiscoverJob(
        _endpoint(spec, target), _planner(spec), grace_s=o.get("grace"), control=control, parallel=o.get("parallel")
    )


def survey_options(spec: JobSpec) -> SurveyOptions:
    reaches = tuple(_endpoint(spec, parse_target(t, ("tcp", "udp", "ws", "wss"))) for t in spec.targets)
    o = spec.options
    return SurveyOptions(
        reaches, _planner(spec), family=str(o.get("family", "both")), grace_s=o.get("grace"), parallel=o.get("parallel")
    )


def _endpoint(spec: JobSpec, target: Target) -> Endpoint:
    ws = WsOptions(headers=[parse_header(h) for h in spec.headers], cacert=spec.cacert, insecure=spec.insecure)
    proxy = None if spec.proxy is None else resolve_proxy(spec.proxy, target, os.environ)
    return Endpoint(target, token=spec.token, ws=ws, timeout_s=spec.timeout_s, proxy=proxy)


def _udp(spec: JobSpec) -> tuple[Target, Endpoint]:
    target = parse_target(spec.target, ("udp",))
    control = control_for(target, spec.control)
    assert control is not None
    return target, _endpoint(spec, control)


def udp_check_options(spec: JobSpec) -> UdpCheckOptions:
    o = spec.options
    target, control = _udp(spec)
    return UdpCheckOptions(target, control, o["idle"], o.get("udp_state", "replied"), grace_s=o.get("grace", 1.0))


async def run_job(spec: JobSpec) -> ProbeResult:
    """One run of a probe; its result, or a NatprobeError."""
    # The exporter's own SIGTERM handler must outlive every run: a discovery
    # installing and then removing its own would leave the next signal to
    # kill the process instead of stopping it.
    if spec.kind == "survey":
        return await run_survey(survey_options(spec), own_signals=False)
    udp = parse_target(spec.target, ("tcp", "udp", "ws", "wss")).scheme is Scheme.UDP
    if spec.kind == "check" and udp:
        return await run_check_udp(udp_check_options(spec))
    if spec.kind == "check":
        return await run_check(check_options(spec))
    return await discovery(discover_job(spec), own_signals=False).run()


Runner = Callable[[JobSpec], Awaitable[ProbeResult]]


class Exporter:
    def __init__(
        self,
        config: ExporterConfig,
        runner: Runner = run_job,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.runner = runner
        self.wall = wall
        self.rng = rng or random.Random()
        self.states = {spec.name: ProbeState(spec.name, spec.kind, every_s=spec.every_s) for spec in config.probes}
        self._slots = asyncio.Semaphore(config.concurrency)
        self.running: set[str] = set()
        #: Runs that began while another run of the same probe was going on.
        self.overlaps = 0

    def families(self) -> list[Family]:
        return families(list(self.states.values()), __version__)

    # Scheduling ------------------------------------------------------------

    def first_delay(self, index: int) -> float:
        """First runs spread over start_spread, each at a random point of its share."""
        count = len(self.config.probes)
        share = self.config.start_spread_s / count
        return share * index + self.rng.uniform(0, share)

    def interval(self, spec: JobSpec) -> float:
        jitter = self.config.jitter
        return spec.every_s * (1 + self.rng.uniform(-jitter, jitter))

    async def run_probe(self, spec: JobSpec) -> None:
        """One run, within the concurrency limit, recorded in the probe's state."""
        state = self.states[spec.name]
        if spec.name in self.running:
            self.overlaps += 1
            return
        self.running.add(spec.name)
        try:
            async with self._slots:
                started = self.wall()
                result: ProbeResult | None = None
                error: str | None = None
                try:
                    result = await self.runner(spec)
                except NatprobeError as exc:
                    error = exc.message
                except Exception as exc:  # a bug must not stop the other probes
                    log.exception("probe %s failed", spec.name)
                    error = f"internal error: {type(exc).__name__}: {exc}"
                state.record(started, self.wall(), result, error)
                if error is not None:
                    log.warning("probe %s: %s", spec.name, error)
        finally:
            self.running.discard(spec.name)

    async def schedule(self, spec: JobSpec, index: int) -> None:
        """Run a probe soon after start, then every interval (with jitter).

        Runs of one probe follow one another: one still going when its next
        turn comes is not started twice; the next starts when it ends.
        """
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.first_delay(index))
        while True:
            begun = loop.time()
            await self.run_probe(spec)
            await asyncio.sleep(max(0.0, begun + self.interval(spec) - loop.time()))

    # HTTP ------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                request = await reader.readline()
                while (await reader.readline()).strip():
                    pass  # headers: not needed
            parts = request.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?")[0]) if len(parts) >= 2 else ("", "")
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/metrics":
                status, ctype = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
                body = exposition(self.families)
            elif path in ("/healthz", "/-/healthy"):
                status, ctype, body = "200 OK", "text/plain", b"ok\n"
            elif path == "/":
                status, ctype = "200 OK", "text/html"
                body = b'<html><body><h1>natprobe exporter</h1><a href="/metrics">metrics</a></body></html>\n'
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found: try /metrics or /healthz\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def serve(self, host: str, port: int, announce: Callable[[str], None]) -> None:
        """Serve until SIGINT or SIGTERM."""
        try:
            server = await asyncio.start_server(self.handle, host, port, reuse_address=True)
        except OSError as exc:
            raise TargetError(f"cannot listen on {format_address(host, port)}: {exc.strerror or exc}") from None
        bound = server.sockets[0].getsockname()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        tasks = [asyncio.create_task(self.schedule(spec, i)) for i, spec in enumerate(self.config.probes)]
        announce(
            f"natprobe exporter listening on http://{format_address(str(bound[0]), int(bound[1]))}/metrics "
            f"({len(tasks)} probes)"
        )
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            server.close()
            await server.wait_closed()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
