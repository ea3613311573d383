"""Real proxies and a private CA for tests: nginx and HAProxy from Debian, openssl."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Found on PATH only (tests/conftest.py `missing` looks the same way).
NGINX = shutil.which("nginx")
HAPROXY = shutil.which("haproxy")
OPENSSL = shutil.which("openssl")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], limit_s: float = 10.0) -> None:
    """Wait until something accepts on 127.0.0.1:port: the proxy's ready signal.

    Neither nginx nor HAProxy in the foreground announces readiness, so accept
    is the signal; the loop is bounded and fails with the proxy's own output.
    """
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''!r}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            # Each attempt is a real connect; no sleep is needed between them
            # beyond the refused connect's own round trip, but yield a little.
            time.sleep(0.02)
    raise RuntimeError(f"proxy did not listen on {port} within {limit_s}s")


@contextmanager
def nginx(server_block: str, workdir: Path, port: int) -> Iterator[None]:
    assert NGINX is not None
    for sub in ("tmp", "logs"):
        (workdir / sub).mkdir(exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""
user root;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    {server_block}
}}
"""
    )
    with foreground([NGINX, "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"], port):
        yield


@contextmanager
def foreground(argv: list[str], port: int) -> Iterator[None]:
    """Run a proxy in the foreground until the block ends; ready once it accepts."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def ws_proxy_block(listen_port: int, upstream_port: int, read_timeout_s: float, tls: Certs | None = None) -> str:
    ssl = ""
    listen = f"127.0.0.1:{listen_port}"
    if tls is not None:
        listen += " ssl"
        ssl = f"ssl_certificate {tls.cert}; ssl_certificate_key {tls.key};"
    return f"""
    server {{
        listen {listen};
        server_name localhost;
        {ssl}
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout {round(read_timeout_s * 1000)}ms;
            proxy_send_timeout {round(read_timeout_s * 1000)}ms;
        }}
    }}
"""


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def make_certs(workdir: Path) -> Certs:
    """A private CA and a certificate for localhost / 127.0.0.1 signed by it."""
    assert OPENSSL is not None

    def run(*args: str) -> None:
        subprocess.run([OPENSSL, *args], check=True, capture_output=True, cwd=workdir)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=natprobe test CA",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    (workdir / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")  # fmt: skip
    return Certs(workdir / "ca.pem", workdir / "server.pem", workdir / "server.key")


@contextmanager
def haproxy_tcp(listen_port: int, upstream_port: int, timeout_s: float, workdir: Path) -> Iterator[None]:
    """HAProxy in TCP mode with the same client and server inactivity timeout."""
    assert HAPROXY is not None
    millis = round(timeout_s * 1000)
    conf = workdir / "haproxy.cfg"
    conf.write_text(
        f"""
global
    maxconn 1000
defaults
    mode tcp
    timeout connect 2s
    timeout client {millis}ms
    timeout server {millis}ms
frontend natprobe
    bind 127.0.0.1:{listen_port}
    default_backend upstream
backend upstream
    server natprobe 127.0.0.1:{upstream_port}
"""
    )
    with foreground([HAPROXY, "-db", "-f", str(conf)], listen_port):
        yield
