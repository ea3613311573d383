"""The designs in the human summary: what a user reads when kernel keepalive
does not keep the path, and when it does."""

from __future__ import annotations

import io

from rich.console import Console

from probe.core.designs import Design, DesignOutcome
from probe.core.survey import SurveyPath, SurveyResult
from probe.render.discover import render_discover
from probe.render.survey import render_survey
from tests.factories import discover_result


def _render(**kept: bool | None) -> str:
    designs = {Design(n): DesignOutcome(k, 1.0, 12.0, f"{n} detail") for n, k in kept.items()}
    out = io.StringIO()
    # soft_wrap: each printed line whole, so a phrase is not split at the edge.
    console = Console(file=out, width=120, no_color=True, color_system=None, highlight=False, soft_wrap=True)
    render_discover(discover_result(designs=designs), console)
    return out.getvalue()


def test_a_terminating_box_gets_one_plain_sentence_and_the_design_that_kept_it() -> None:
    text = _render(tcp_keepalive=False, server_keepalive=False, client_data=True, server_data=True, heartbeat=True)
    assert "TCP keepalive does not keep this path" in text
    assert "a box that terminates TCP" in text and "Middlebox: tcp_terminating" in text
    assert "Kept it: client_data" in text and "Node.js ws: setInterval" in text
    # No sysctl to copy; kernel keepalive only for noticing a dead peer.
    assert "sysctl -w" not in text and "setsockopt" not in text
    assert "can still notice a dead peer, not keep this path" in text
    plan_rows = [
        line.split() for line in text.splitlines() if line.lstrip().startswith(("kernel keepalive", "heartbeat ("))
    ]
    assert [row[2] for row in plan_rows] == ["no", "yes"]


def test_a_stateful_box_keeps_the_kernel_settings_and_says_they_were_proven() -> None:
    text = _render(tcp_keepalive=True, server_keepalive=True, client_data=True, server_data=True, heartbeat=True)
    assert "TCP keepalive does not keep" not in text and "Middlebox: ip_stateful" in text
    assert "Proven on this path: tcp_keepalive kept the flow" in text and "sysctl -w" in text
    # Proven settings go unlabelled; the WebSocket ping was not tried on a tcp:// path, and says so.
    assert "Linux, system-wide TCP keepalive:" in text
    assert "(websockets: ping_interval=7.9) (not tried on this path)" in text
    assert "kept      the client's kernel keepalive probes, no data\n      tcp_keepalive detail" in text


def test_without_designs_the_plan_says_not_tried() -> None:
    out = io.StringIO()
    render_discover(discover_result(), Console(file=out, width=120, no_color=True, color_system=None))
    assert "Designs tried" not in out.getvalue() and "not tried" in out.getvalue()


def _survey_text(width: int) -> str:
    relay = {Design(n): DesignOutcome(k, 1.0, 12.0, "") for n, k in (("tcp_keepalive", False), ("client_data", True))}
    nat = {Design(n): DesignOutcome(True, 1.0, 12.0, "") for n in ("tcp_keepalive", "client_data")}
    survey = SurveyResult(
        (
            SurveyPath("tcp://h:4040", 4, 4040, discover_result(designs=relay)),
            SurveyPath("tcp://h:5222", 4, 5222, discover_result(target="tcp://h:5222", designs=nat)),
        ),
        wall_s=12.0,
    )
    out = io.StringIO()
    render_survey(survey, Console(file=out, width=width, no_color=True, color_system=None, highlight=False))
    return out.getvalue()


def test_a_survey_names_the_design_each_path_proved() -> None:
    wide = _survey_text(120)
    rows = [line.split() for line in wide.splitlines() if line.startswith("tcp://")]
    assert [row[-2] for row in rows] == ["client_data", "tcp_keepalive"]
    assert "design: the cheapest keepalive design tried on that path" in " ".join(wide.split())
    # Too narrow for the column: a line per path under the table instead.
    narrow = _survey_text(80)
    assert "path 1: design client_data" in narrow and "path 2: design tcp_keepalive" in narrow
    assert max(len(line) for line in narrow.splitlines()) <= 80
