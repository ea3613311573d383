"""Every worked example in docs/testing-your-app.md runs, as a user would run it.

Each ```python block that starts with ``# test_NAME.py`` is written out as
that file and run by pytest in a fresh process, with natprobe's plugin loaded
from its entry point and nothing of natprobe's own test suite.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "testing-your-app.md"

#: file -> how many tests in it pass.
EXPECTED = {"test_chat_client.py": 2, "test_with_marker.py": 1, "test_keepalive.py": 2}


def examples() -> dict[str, str]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    found = {}
    for block in blocks:
        first = block.splitlines()[0]
        if match := re.fullmatch(r"# (test_\w+\.py)", first):
            found[match.group(1)] = block
    return found


def test_the_doc_has_the_examples_this_test_expects() -> None:
    assert set(examples()) == set(EXPECTED)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.requires("kernel_nat")) if "keepalive" in n else n for n in EXPECTED],
)
def test_the_worked_example_passes(pytester: pytest.Pytester, name: str) -> None:
    pytester.makepyfile(**{name.removesuffix(".py"): examples()[name]})
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=EXPECTED[name])
    if name == "test_chat_client.py":
        result.stdout.fnmatch_lines(["*without heartbeats the client noticed the dead connection after 2.? s*"])
