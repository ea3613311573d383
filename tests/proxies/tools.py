"""Real proxies and a private CA for tests: nginx and HAProxy from Debian, openssl."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import scaled

# Found on PATH only (tests/conftest.py `missing` looks the same way).
NGINX = shutil.which("nginx")
HAPROXY = shutil.which("haproxy")
STUNNEL = shutil.which("stunnel4")
OPENSSL = shutil.which("openssl")


@dataclass
class Listener:
    """A listening socket the test makes and hands to a proxy: the port is
    never released and taken again, so no other process can grab it."""

    sock: socket.socket

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    @property
    def fd(self) -> int:
        return self.sock.fileno()


@contextmanager
def listener() -> Iterator[Listener]:
    sock = socket.create_server(("127.0.0.1", 0))
    sock.set_inheritable(True)
    with sock:
        yield Listener(sock)


def wait_answering(port: int, request: bytes, answer: bytes, proc: subprocess.Popen[bytes]) -> None:
    """The proxy's ready signal: ``request`` sent through it gets ``answer`` back.

    The socket listens before the proxy starts (connections wait in its
    backlog), so accepting proves nothing; an answer from behind the proxy
    does. One attempt, bounded by a scaled timeout.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(10)) as sock:
        sock.sendall(request)
        data = b""
        while answer not in data:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                chunk = b""
            if not chunk:
                err = proc.stderr.read() if proc.poll() is not None and proc.stderr else b""
                raise RuntimeError(f"the proxy did not answer {request!r}: {data!r} {err!r}")
            data += chunk


@contextmanager
def nginx(server_block: str, workdir: Path, listen: Listener) -> Iterator[None]:
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
    # nginx takes sockets from its parent through NGINX=fd; (as in a binary
    # upgrade) and uses the one whose address matches a listen directive.
    argv = [NGINX, "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"]
    with foreground(argv, listen, b"GET / HTTP/1.0\r\n\r\n", b"HTTP/", env={"NGINX": f"{listen.fd};"}):
        yield


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a proxy: SIGTERM, then SIGKILL if it lingers; its pipes are closed."""
    proc.terminate()
    try:
        proc.communicate(timeout=scaled(10))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@contextmanager
def foreground(
    argv: list[str], listen: Listener, request: bytes, answer: bytes, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Run a proxy on the handed-over socket until the block ends."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=[listen.fd], env={**os.environ, **(env or {})}
    )
    try:
        wait_answering(listen.port, request, answer, proc)
        yield
    finally:
        stop(proc)


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
def haproxy_tcp(listen: Listener, upstream_port: int, timeout_s: float, workdir: Path) -> Iterator[None]:
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
    bind fd@{listen.fd}
    default_backend upstream
backend upstream
    server natprobe 127.0.0.1:{upstream_port}
"""
    )
    with foreground([HAPROXY, "-db", "-f", str(conf)], listen, b'{"op":"hello","v":1}\n', b'"welcome"'):
        yield


@contextmanager
def stunnel_pair(upstream_port: int, idle_s: int, workdir: Path) -> Iterator[int]:
    """A TLS tunnel of two stunnel services, as a client site and a server
    site would run it: plain TCP in at the returned port, TLS between the
    two, plain TCP out to ``upstream_port``. The server side closes a tunnel
    idle for ``idle_s`` (TIMEOUTidle, whole seconds): a box that terminates
    TCP, so the client's keepalive probes end at the first stunnel."""
    assert STUNNEL is not None
    certs = make_certs(workdir)
    client_port, server_port = free_port(), free_port()
    conf = workdir / "stunnel.conf"
    conf.write_text(
        f"""
foreground = yes
pid =
debug = 3
[natprobe-client]
client = yes
accept = 127.0.0.1:{client_port}
connect = 127.0.0.1:{server_port}
CAfile = {certs.ca}
verifyChain = yes
checkHost = localhost
[natprobe-server]
accept = 127.0.0.1:{server_port}
connect = 127.0.0.1:{upstream_port}
cert = {certs.cert}
key = {certs.key}
TIMEOUTidle = {idle_s}
"""
    )
    proc = subprocess.Popen([STUNNEL, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(client_port, proc)
        wait_listening(server_port, proc)
        yield client_port
    finally:
        stop(proc)


def free_port() -> int:
    """A port nothing listens on now. squid and microsocks take only a number,
    not a socket, so for them (alone) a port is released and taken again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], within_s: float = 10.0) -> None:
    """The ready signal of a proxy that prints none: the kernel lists its
    listening socket. Each look waits on the process itself, so a proxy that
    dies is seen at once; bounded."""
    import psutil

    for _ in range(int(scaled(within_s) / 0.05)):
        if any(c.status == psutil.CONN_LISTEN and c.laddr[1] == port for c in psutil.net_connections("tcp")):
            return
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"the proxy exited: {proc.stderr.read() if proc.stderr else b''!r}")
    raise RuntimeError(f"nothing listened on port {port} within {within_s} s")


@contextmanager
def squid(workdir: Path, read_timeout_s: int) -> Iterator[int]:
    """Debian's squid, CONNECT allowed to any port from localhost, closing
    tunnels that carried nothing for ``read_timeout_s``; its port."""
    port = free_port()
    workdir.chmod(0o777)  # squid drops to its own user
    conf = workdir / "squid.conf"
    conf.write_text(
        f"""
http_port 127.0.0.1:{port}
http_access allow localhost
http_access deny all
read_timeout {read_timeout_s} seconds
cache deny all
cache_mem 8 MB
pid_filename {workdir}/squid.pid
cache_log {workdir}/cache.log
access_log none
coredump_dir {workdir}
cache_effective_user proxy
shutdown_lifetime 1 seconds
"""
    )
    proc = subprocess.Popen(
        ["squid", "-N", "-d", "1", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        # Its own ready line, on stderr with -d 1.
        for _ in range(200):  # bounded: squid prints a few dozen lines at start
            line = read_line_bytes(proc, within_s=15.0)
            if b"Accepting HTTP Socket connections" in line:
                break
        else:
            raise RuntimeError("squid did not say it accepts connections")
        yield port
    finally:
        stop(proc)


def read_line_bytes(proc: subprocess.Popen[bytes], within_s: float) -> bytes:
    import select

    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], scaled(within_s))
    line = proc.stderr.readline() if ready else b""
    if not line:
        raise RuntimeError("squid stopped talking before it was ready")
    return line


@contextmanager
def microsocks(user: str | None = None, password: str | None = None) -> Iterator[int]:
    """Debian's microsocks, a SOCKS5 proxy (with user and password if given); its port."""
    port = free_port()
    argv = ["microsocks", "-i", "127.0.0.1", "-p", str(port)]
    if user is not None and password is not None:
        argv += ["-u", user, "-P", password]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        yield port
    finally:
        stop(proc)


@contextmanager
def canned_proxy(answer: bytes) -> Iterator[int]:
    """A "proxy" that answers every connection with ``answer`` and closes: for
    a proxy that wants authentication, or one that speaks garbage."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(scaled(5))
                try:
                    conn.recv(4096)
                    conn.sendall(answer)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(scaled(5))
        listener.close()
