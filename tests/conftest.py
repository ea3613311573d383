"""Shared fixtures: real servers on loopback, started in-process or as processes."""

from __future__ import annotations

import functools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from probe.schemas import by_id, load

#: The shipped schemas, so that one may refer to another (a survey's paths).
REGISTRY: Registry[Any] = Registry().with_resources(
    (uri, Resource.from_contents(schema)) for uri, schema in by_id().items()
)

# pytester runs pytest on generated files: how the test kit's plugin is tested.
pytest_plugins = ("pytester",)

#: Every real-time constant in the tests scales from this factor, so a slow
#: machine can stretch them: NATPROBE_TEST_TIME_SCALE=2 pytest
TIME_SCALE = float(os.environ.get("NATPROBE_TEST_TIME_SCALE", "1"))

#: With NATPROBE_REQUIRE_LAB=1 (as .ci/run sets it), a missing lab
#: prerequisite fails the test instead of skipping it, so a CI that cannot
#: run the lab does not look green.
REQUIRE_LAB = os.environ.get("NATPROBE_REQUIRE_LAB") == "1"

_TOOLS = {
    "nginx": "apt-get install nginx",
    "haproxy": "apt-get install haproxy",
    "openssl": "apt-get install openssl",
    "ss": "apt-get install iproute2",
    "prometheus": "apt-get install prometheus",
    "promtool": "apt-get install prometheus",
    "squid": "apt-get install squid",
    "microsocks": "apt-get install microsocks",
    "stunnel4": "apt-get install stunnel4",
}


@functools.cache
def missing(name: str) -> str | None:
    """Why the prerequisite ``name`` is missing here, or None if it is present."""
    if name == "kernel_nat":
        from probe.lab.netns import unavailable_reason

        return unavailable_reason()
    if name in _TOOLS:
        return None if shutil.which(name) else f"`{name}` is not on PATH ({_TOOLS[name]})"
    raise ValueError(f"unknown prerequisite {name!r}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires"):
        for name in mark.args:
            reason = missing(name)
            if reason is None:
                continue
            if REQUIRE_LAB:
                pytest.fail(f"NATPROBE_REQUIRE_LAB=1 and {reason}", pytrace=False)
            pytest.skip(reason)


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


#: How a process whose output a test reads is started: pipes, text, no stdin.
PIPES: dict[str, Any] = {
    "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "stdin": subprocess.DEVNULL,
}  # fmt: skip


@dataclass
class Proc:
    proc: subprocess.Popen[str]
    ready_line: str

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the process, wait for it and close its pipes."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        self.proc.communicate(timeout=scaled(10))
        return self.proc.returncode


def natprobe_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "probe", *args]


def read_line(pipe: IO[str], within_s: float = 15.0) -> str:
    """The next line a child process writes, waiting at most ``within_s`` (scaled)."""
    ready, _, _ = select.select([pipe], [], [], scaled(within_s))
    if not ready:
        raise AssertionError(f"no output within {scaled(within_s):g}s")
    return pipe.readline()


def start(
    argv: list[str], ready: str, stream: str = "stderr", env: dict[str, str] | None = None, within_s: float = 15.0
) -> Proc:
    """Start a process and wait for its ready line: the one process helper.

    The process's own announcement is the signal, never a sleep; waiting for
    it is bounded.
    """
    proc = subprocess.Popen(argv, **PIPES, env=None if env is None else {**os.environ, **env})
    return wait_ready(proc, ready, stream, within_s)


def wait_ready(proc: subprocess.Popen[str], ready: str, stream: str = "stderr", within_s: float = 15.0) -> Proc:
    """Wait for a started process's ready line (bounded); kill it if it never comes."""
    pipe = proc.stderr if stream == "stderr" else proc.stdout
    assert pipe is not None
    try:
        line = read_line(pipe, within_s)
    except AssertionError:
        line = ""
    if ready not in line:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"process did not become ready: {line!r} {out!r} {err!r}")
    return Proc(proc, line.strip())


def start_process(*args: str, ready: str, env: dict[str, str] | None = None) -> Proc:
    """Start ``natprobe ARGS`` and wait for its ready line on stderr."""
    return start(natprobe_cmd(*args), ready, env=env)


def port_of(ready_line: str) -> int:
    """The first port in 'listening on [tcp] 127.0.0.1:PORT ...'."""
    match = re.search(r" on (?:\w+ )?\S+:(\d+)", ready_line)
    assert match, ready_line
    return int(match.group(1))


def start_emulator(server: Proc, idle_timeout_s: float) -> Proc:
    """``natprobe emulate`` in front of a server process, forgetting flows idle that long."""
    upstream = port_of(server.ready_line)
    return start_process(
        "emulate", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{upstream}",
        "--idle-timeout", str(idle_timeout_s), ready="listening on",
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Results saved by commands under test go to a temporary state directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def server_proc() -> Iterator[Proc]:
    proc = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on")
    yield proc
    proc.stop()


def run_cli(*args: str, timeout: float = 120.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        natprobe_cmd(*args),
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        stdin=subprocess.DEVNULL,
        env=full_env,
    )


def validate_output(result: dict[str, Any]) -> dict[str, Any]:
    """Check a command's JSON against the schema it names; return it.

    Beyond the schema (which lets later versions add fields), every top-level
    field must be one the schema describes: an output cannot grow fields the
    documented contract does not have.
    """
    schema = load(result["schema"])
    Draft202012Validator(schema, registry=REGISTRY).validate(result)
    described = set(schema["properties"])
    for branch in schema.get("oneOf", []):
        described |= set(branch["properties"])
    undocumented = set(result) - described
    assert not undocumented, f"fields missing from the {result['schema']} schema: {sorted(undocumented)}"
    return result


def output_json(text: str) -> dict[str, Any]:
    """Parse a command's --json output and validate it against its schema."""
    result: dict[str, Any] = json.loads(text)
    return validate_output(result)
