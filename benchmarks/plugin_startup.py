"""What natprobe's pytest plugin costs a project whose tests do not use it.

    python benchmarks/plugin_startup.py [--runs 15] [--json]

pytest loads the plugin (entry point ``pytest11``/``natprobe``) in every
environment where natprobe is installed. This measures, in one run:

* pytest's start-up to the end of a one-test session, in a fresh process,
  with the plugin and with ``-p no:natprobe`` (the baseline), runs
  interleaved so that machine noise falls on both alike: median and
  spread of each, and the difference of the medians;
* the import of the plugin module alone after pytest (``-X importtime``);
* which natprobe modules such a session imported: the plugin and the
  package's two ``__init__`` files only, none of the test kit's machinery
  (asyncio relays, the lab).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TEST_FILE = """
import sys

def test_plain():
    assert 1 + 1 == 2

def test_zz_modules():
    loaded = sorted(m for m in sys.modules if m == "probe" or m.startswith("probe."))
    print("NATPROBE_MODULES=" + ",".join(loaded))
"""


def session(folder: Path, *extra: str) -> float:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(folder)]
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True, cwd=folder)
    return time.perf_counter() - started


def modules_loaded(folder: Path) -> list[str]:
    argv = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(folder)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=folder).stdout
    # -s prints the line inline, after pytest's progress dot.
    line = next(line for line in out.splitlines() if "NATPROBE_MODULES=" in line)
    return [m for m in line.split("NATPROBE_MODULES=", 1)[1].split(",") if m]


def plugin_import_us() -> int:
    """Cumulative import time of probe.testing.plugin once pytest is imported (µs)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest; import probe.testing.plugin"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for line in proc.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == "probe.testing.plugin":
            return int(parts[1])
    raise RuntimeError("probe.testing.plugin was not imported")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_plain.py").write_text(TEST_FILE)
        env_ok = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") is None
        if not env_ok:
            raise SystemExit("PYTEST_DISABLE_PLUGIN_AUTOLOAD is set: the plugin would not load at all")
        session(folder)  # warm the file cache for both
        with_plugin: list[float] = []
        without: list[float] = []
        for _ in range(args.runs):
            with_plugin.append(session(folder))
            without.append(session(folder, "-p", "no:natprobe"))
        loaded = modules_loaded(folder)

    result: dict[str, Any] = {
        "runs": args.runs,
        "with_plugin_s": {"median": statistics.median(with_plugin), "min": min(with_plugin), "max": max(with_plugin)},
        "without_plugin_s": {"median": statistics.median(without), "min": min(without), "max": max(without)},
        "difference_ms": 1000 * (statistics.median(with_plugin) - statistics.median(without)),
        "plugin_import_us": plugin_import_us(),
        "natprobe_modules_loaded": loaded,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"pytest start-up to the end of a one-test session, {args.runs} runs each, interleaved:")
    for label, key in (("with natprobe's plugin", "with_plugin_s"), ("with -p no:natprobe", "without_plugin_s")):
        t = {k: v * 1000 for k, v in result[key].items()}
        print(f"  {label:<24} median {t['median']:7.1f} ms  (min {t['min']:.1f}, max {t['max']:.1f})")
    print(f"  difference of medians    {result['difference_ms']:+7.1f} ms")
    print(f"import of probe.testing.plugin after pytest: {result['plugin_import_us']} µs")
    print(f"natprobe modules such a session imported: {', '.join(loaded)}")


if __name__ == "__main__":
    main()
