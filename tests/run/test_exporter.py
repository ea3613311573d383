"""The exporter's schedule, concurrency and endpoints, with a fake probe
runner whose runs end when the test says so; and atomic textfiles."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from probe.core.evidence import FailureMode
from probe.core.exporter_config import ExporterConfig, JobSpec
from probe.core.metrics import ProbeResult, ProbeState, families
from probe.core.survey import PathError, SurveyPath, SurveyResult
from probe.errors import TargetError
from probe.run.exporter import Exporter
from probe.run.prometheus import carried_counts, exposition, write_textfile
from tests.conftest import scaled
from tests.factories import check_result, discover_result


def spec(name: str, every: float = 3600.0, kind: str = "check") -> JobSpec:
    return JobSpec(name, "tcp://127.0.0.1:1", kind, every, {"idle": 1.0})


class FakeRunner:
    """Runs that wait for the test to release them, so overlap is visible."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.active = 0
        self.most_active = 0
        self.release: dict[str, asyncio.Event] = {}

    async def __call__(self, job: JobSpec) -> ProbeResult:
        self.started.append(job.name)
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        event = self.release.setdefault(job.name, asyncio.Event())
        try:
            await event.wait()
        finally:
            self.active -= 1
        event.clear()
        if job.name == "broken":
            raise TargetError("connection to 127.0.0.1:1 refused")
        return check_result(idle_s=1.0)


def test_first_runs_spread_over_the_start_and_intervals_jitter_within_bounds() -> None:
    config = ExporterConfig((spec("a"), spec("b"), spec("c"), spec("d")), jitter=0.1, start_spread_s=8.0)
    exporter = Exporter(config, rng=random.Random(7))
    delays = [exporter.first_delay(i) for i in range(4)]
    for index, delay in enumerate(delays):
        assert 2.0 * index <= delay <= 2.0 * (index + 1)  # each in its own share of the 8 s
    intervals = [exporter.interval(spec("a", every=100.0)) for _ in range(200)]
    assert min(intervals) >= 90.0 and max(intervals) <= 110.0 and max(intervals) - min(intervals) > 10.0


def test_at_most_concurrency_probes_run_at_once() -> None:
    async def body() -> FakeRunner:
        runner = FakeRunner()
        config = ExporterConfig((spec("a"), spec("b"), spec("c")), concurrency=2)
        exporter = Exporter(config, runner=runner)
        tasks = [asyncio.create_task(exporter.run_probe(s)) for s in config.probes]
        for _ in range(100):  # bounded: until two have started
            if len(runner.started) == 2:
                break
            await asyncio.sleep(0.01)
        assert runner.active == 2 and len(runner.started) == 2  # the third waits for a slot
        for name in ("a", "b", "c"):
            runner.release.setdefault(name, asyncio.Event()).set()
        await asyncio.gather(*tasks)
        return runner

    runner = asyncio.run(body())
    assert runner.most_active == 2 and sorted(runner.started) == ["a", "b", "c"]


def test_a_probe_still_running_is_not_started_twice_and_errors_are_counted() -> None:
    async def body() -> tuple[Exporter, FakeRunner]:
        runner = FakeRunner()
        exporter = Exporter(ExporterConfig((spec("broken"),), concurrency=4), runner=runner)
        first = asyncio.create_task(exporter.run_probe(spec("broken")))
        for _ in range(100):
            if runner.started:
                break
            await asyncio.sleep(0.01)
        await exporter.run_probe(spec("broken"))  # its turn came while it runs
        assert runner.started == ["broken"] and exporter.overlaps == 1
        runner.release["broken"].set()
        await first
        return exporter, runner

    exporter, _ = asyncio.run(body())
    state = exporter.states["broken"]
    assert (state.runs, state.errors, state.last_error) == (1, 1, "connection to 127.0.0.1:1 refused")


def test_the_schedule_runs_a_probe_soon_after_start_then_every_interval() -> None:
    async def body() -> list[float]:
        times: list[float] = []

        async def runner(job: JobSpec) -> ProbeResult:
            times.append(asyncio.get_running_loop().time())
            return check_result(idle_s=1.0)

        every = scaled(0.2)
        exporter = Exporter(
            ExporterConfig((spec("a", every=every),), jitter=0.0, start_spread_s=scaled(0.1)), runner=runner
        )
        task = asyncio.create_task(exporter.schedule(exporter.config.probes[0], 0))
        for _ in range(int(scaled(5) / 0.01)):  # bounded: until three runs
            if len(times) >= 3:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        return times

    times = asyncio.run(body())
    assert len(times) >= 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(scaled(0.2) - 0.01 <= gap <= scaled(0.2) + scaled(0.15) for gap in gaps), gaps


def test_metrics_and_health_over_http() -> None:
    async def body() -> dict[str, bytes]:
        exporter = Exporter(ExporterConfig((spec("a"),)))
        exporter.states["a"].record(1.0, 2.0, check_result(idle_s=1.0), None)
        server = await asyncio.start_server(exporter.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        replies: dict[str, bytes] = {}
        for path in ("/metrics", "/healthz", "/nope"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            async with asyncio.timeout(scaled(5)):
                replies[path] = await reader.read()
            writer.close()
        server.close()
        await server.wait_closed()
        return replies

    replies = asyncio.run(body())
    head, _, body_ = replies["/metrics"].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"text/plain; version=0.0.4" in head
    names = {f.name for f in text_string_to_metric_families(body_.decode())}
    assert {"natprobe_check_success", "natprobe_runs", "natprobe_build_info"} <= names
    assert replies["/healthz"].startswith(b"HTTP/1.1 200 OK") and replies["/healthz"].endswith(b"ok\n")
    assert replies["/nope"].startswith(b"HTTP/1.1 404")


def test_a_textfile_is_replaced_in_one_step_while_it_is_read(tmp_path: Path) -> None:
    # A reader keeps reading while the file is rewritten 300 times with texts
    # of different lengths: every read is one whole version, never half of one.
    path = tmp_path / "natprobe.prom"
    versions = [(f"# {n}\n" + "x" * (n * 37 % 5000) + "\nEND\n").encode() for n in range(300)]
    write_textfile(path, versions[0])
    torn: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = path.read_bytes()
            if data not in versions:
                torn.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for data in versions:
            write_textfile(path, data)
    finally:
        stop.set()
        reader.join(timeout=scaled(10))
    assert torn == []
    assert path.read_bytes() == versions[-1]
    assert [p.name for p in tmp_path.iterdir()] == ["natprobe.prom"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "natprobe.prom"
    write_textfile(path, b"old\n")

    with pytest.raises(TypeError):
        write_textfile(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old\n" and [p.name for p in tmp_path.iterdir()] == ["natprobe.prom"]


def test_counts_carry_from_an_earlier_textfile(tmp_path: Path) -> None:
    path = tmp_path / "n.prom"
    state = ProbeState("short", "check")
    state.record(5.0, 6.0, check_result(idle_s=1.0), None)
    state.record(7.0, 8.0, None, "refused")
    write_textfile(path, exposition(lambda: families([state], "1")))
    assert carried_counts(path, "short") == (2, 1, 5.0)
    assert carried_counts(path, "other") == (0, 0, None)
    assert carried_counts(tmp_path / "missing.prom", "short") == (0, 0, None)
    (tmp_path / "junk.prom").write_text("this is { not metrics\n")
    assert carried_counts(tmp_path / "junk.prom", "short") == (0, 0, None)


@pytest.mark.requires("promtool")
def test_promtool_accepts_the_exporters_metrics_with_every_family_filled() -> None:
    import subprocess

    probes = (spec("short"), spec("find", kind="discover"), spec("down"), spec("paths", kind="survey"))
    exporter = Exporter(ExporterConfig(probes))
    exporter.states["short"].record(1.0, 2.0, check_result(passed=False, idle_s=120.0), None)
    found = discover_result(9.9, 10.1, FailureMode.RESET)
    exporter.states["find"].record(1.0, 12.0, found, None)
    paths = (
        SurveyPath("tcp://h:4040", 6, 4040, found),
        SurveyPath("tcp://h:5222", None, 5222, error=PathError("x", 3)),
    )
    exporter.states["paths"].record(1.0, 12.0, SurveyResult(paths, 12.0), None)
    exporter.states["down"].record(1.0, 1.5, None, "refused")
    text = exposition(exporter.families).decode()
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert lint.returncode == 0 and lint.stdout == "" and lint.stderr == "", lint.stdout + lint.stderr
    # A survey's path and family labels are empty on a discover probe's
    # samples of the same family: to Prometheus, an empty label is no label.
    modes = {
        (sample.labels["probe"], sample.labels["mode"], sample.labels.get("path", ""))
        for family in text_string_to_metric_families(text)
        if family.name == "natprobe_discover_failure_mode"
        for sample in family.samples
    }
    assert modes == {("find", "reset", ""), ("paths", "reset", "tcp://h:4040")}
    assert 'natprobe_probe_interval_seconds{probe="down"} 3600.0' in text
    assert 'natprobe_discover_upper_seconds{family="6",path="tcp://h:4040",probe="paths"} 10.1' in text
    assert 'natprobe_survey_path_success{family="any",path="tcp://h:5222",probe="paths"} 0.0' in text
