"""The deployment files: checked with the tools that can check them here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", ["natprobe-server.service", "natprobe-exporter.service"])
def test_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    # verify insists the ExecStart binary exists: point it at this install.
    natprobe = shutil.which("natprobe") or f"{sys.executable} -m probe"
    text = (DEPLOY / unit).read_text().replace("/usr/local/bin/natprobe", natprobe)
    (tmp_path / unit).write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(tmp_path / unit)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    problems = [line for line in proc.stderr.splitlines() if unit in line]
    assert problems == []


def test_units_are_hardened_and_sized_for_the_session_limit() -> None:
    text = (DEPLOY / "natprobe-server.service").read_text()
    for setting in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=on-failure"):
        assert setting in text.splitlines()
    limit = int(next(line for line in text.splitlines() if line.startswith("LimitNOFILE=")).split("=")[1])
    sessions = int(text.split("--max-sessions ")[1].split()[0])
    assert limit >= sessions + 100  # one descriptor per session, and room to spare
    # No capabilities unless asked for (ports above 1024).
    assert "CapabilityBoundingSet=" in text.splitlines() and "AmbientCapabilities=" in text.splitlines()


@pytest.mark.requires("promtool")
def test_alert_rules_pass_promtool() -> None:
    proc = subprocess.run(
        ["promtool", "check", "rules", str(DEPLOY / "natprobe-alerts.yml")], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "SUCCESS: 4 rules found" in proc.stdout, proc.stdout + proc.stderr


def test_container_runs_as_a_numeric_non_root_user() -> None:
    lines = (DEPLOY / "Containerfile").read_text().splitlines()
    assert next(line for line in lines if line.startswith("FROM")) == "FROM python:3.12-slim"
    user = next(line for line in lines if line.startswith("USER ")).split()[1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit()
    assert "STOPSIGNAL SIGTERM" in lines


def test_kubernetes_example_has_a_protocol_readiness_probe_and_a_service() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in docs}
    assert set(kinds) == {"Deployment", "Service"}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["exec"]["command"][:2] == ["natprobe", "check"]
    assert kinds["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    ports = {p["port"] for p in kinds["Service"]["spec"]["ports"]}
    assert ports == {4040, 8080}
