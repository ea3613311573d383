"""Client side of the natprobe protocol over TCP (asyncio streams)."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from probe.core.evidence import FailureMode
from probe.core.protocol import MAX_LINE, VERSION, ProtocolError, decode, encode
from probe.core.targets import format_address
from probe.core.text import printable
from probe.errors import TargetError

CONNECT_TIMEOUT_S = 10.0


class ConnectionEnded(Exception):
    """The connection ended: ``mode`` says how (reset or closed)."""

    def __init__(self, mode: FailureMode, detail: str = "") -> None:
        super().__init__(detail or mode.value)
        self.mode = mode
        #: errno.ETIMEDOUT when the kernel gave up (keepalive or user timeout).
        self.timed_out = False
        #: WebSocket close code and reason (1006: no close frame came).
        self.close_code: int | None = None
        self.close_reason = ""


#: How to say why a connection failed: (exception class, what to say of it
#: and ``where``), the first class that matches speaks.
Wording = tuple[tuple[type[BaseException], Callable[[Any, str], str]], ...]


def _os_error(exc: OSError, where: str) -> str:
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"{where} is unreachable: {exc.strerror}"
    return f"cannot connect to {where}: {exc.strerror or exc}"


CONNECT_ERRORS: Wording = (
    (socket.gaierror, lambda exc, where: f"cannot resolve {where}: {exc.strerror or exc}"),
    (ConnectionRefusedError, lambda exc, where: f"connection to {where} refused"),
    (TimeoutError, lambda exc, where: f"connection to {where} timed out"),
    (OSError, _os_error),
)


def describe_connect_error(exc: BaseException, where: str, wording: Wording = CONNECT_ERRORS) -> str:
    """One line naming why a connection attempt failed."""
    say = next((say for kind, say in wording if isinstance(exc, kind)), None)
    return say(exc, where) if say is not None else f"cannot connect to {where}: {exc}"


def classify_end(exc: BaseException | None) -> ConnectionEnded:
    if exc is None or isinstance(exc, asyncio.IncompleteReadError):
        return ConnectionEnded(FailureMode.CLOSED, "closed by the peer")
    if isinstance(exc, ConnectionResetError):
        return ConnectionEnded(FailureMode.RESET, "reset")
    if isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT:
        ended = ConnectionEnded(FailureMode.SILENT_DROP, "timed out")
        ended.timed_out = True
        return ended
    if isinstance(exc, OSError):
        return ConnectionEnded(FailureMode.RESET, exc.strerror or str(exc))
    return ConnectionEnded(FailureMode.CLOSED, str(exc))


@dataclass
class Welcome:
    observed: str
    server: str
    session: str
    local: str
    raw: dict[str, Any]


class ProtocolConnection:
    """One TCP connection speaking natprobe lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str) -> None:
        self.reader = reader
        self.writer = writer
        self.where = where

    @property
    def socket(self) -> socket.socket:
        sock: socket.socket = self.writer.get_extra_info("socket")
        return sock

    def local_address(self) -> str:
        host, port = self.writer.get_extra_info("sockname")[:2]
        return format_address(str(host), int(port))

    def send(self, *messages: dict[str, Any]) -> None:
        """Queue messages as one write (one segment for a small batch)."""
        self.writer.write(b"".join(encode(m) for m in messages))

    async def recv(self) -> dict[str, Any]:
        """The next message; raises ConnectionEnded or TargetError."""
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            raise classify_end(None) from None
        except asyncio.LimitOverrunError:
            raise TargetError(f"{self.where} sent a line longer than {MAX_LINE} bytes") from None
        except OSError as exc:
            raise classify_end(exc) from None
        return parse_reply(self.where, line.rstrip(b"\r\n"))

    async def hello(
        self, token: str | None = None, timeout_s: float = CONNECT_TIMEOUT_S, run: str | None = None, **asks: float
    ) -> Welcome:
        return await hello_exchange(self, token, timeout_s, run, asks)

    def abort(self) -> None:
        transport = self.writer.transport
        transport.abort()

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
        except (OSError, TimeoutError):
            pass


class MessageConnection(Protocol):
    """A natprobe protocol connection, over TCP lines or WebSocket messages."""

    where: str

    def send(self, *messages: dict[str, Any]) -> None: ...

    async def recv(self) -> dict[str, Any]: ...

    async def hello(
        self, token: str | None = None, timeout_s: float = CONNECT_TIMEOUT_S, run: str | None = None, **asks: float
    ) -> Welcome:
        """Say hello; ``asks`` are a design connection's hello fields (docs/protocol.md)."""
        ...

    def local_address(self) -> str: ...

    @property
    def socket(self) -> socket.socket: ...

    def abort(self) -> None: ...

    async def close(self) -> None: ...


async def answer(conn: MessageConnection, timeout_s: float, silent: str, during: str = "") -> dict[str, Any]:
    """The next message, as a TargetError when none comes within ``timeout_s``
    (``silent`` says what the server did not do) or the connection ends."""
    try:
        async with asyncio.timeout(timeout_s):
            return await conn.recv()
    except TimeoutError:
        raise TargetError(f"{conn.where} {silent}") from None
    except ConnectionEnded as exc:
        raise TargetError(f"{conn.where} ended the connection{during} ({exc})") from None


async def hello_exchange(
    conn: MessageConnection,
    token: str | None,
    timeout_s: float,
    run: str | None = None,
    asks: Mapping[str, float] | None = None,
) -> Welcome:
    """Say hello and check the welcome; ``run`` joins a control session's run,
    ``asks`` are a design connection's hello fields (``keepalive_s``, ``tick_every_s``)."""
    hello: dict[str, Any] = {"op": "hello", "v": VERSION, **(asks or {})}
    if token is not None:
        hello["token"] = token
    if run is not None:
        hello["run"] = run
    conn.send(hello)
    msg = await answer(conn, timeout_s, "did not answer hello (is it a natprobe server?)", " during hello")
    if msg.get("op") != "welcome" or not isinstance(msg.get("observed"), str):
        raise TargetError(f"{conn.where} answered hello with {printable(msg.get('op'), 40)!r}, not welcome")
    return Welcome(
        observed=printable(msg["observed"], 80),
        server=printable(msg.get("server", ""), 80),
        session=str(msg.get("session", ""))[:128],
        local=conn.local_address(),
        raw=msg,
    )


def parse_reply(where: str, raw: bytes) -> dict[str, Any]:
    """A server message, or a TargetError for garbage and for ``error`` replies."""
    try:
        msg = decode(raw)
    except ProtocolError as exc:
        raise TargetError(f"{where} does not speak the natprobe protocol ({exc.message})") from None
    if msg["op"] == "error":
        raise server_error(where, msg)
    return msg


def server_error(where: str, msg: dict[str, Any]) -> TargetError:
    """The server's error message as a one-line TargetError, made printable."""
    code = printable(msg.get("code", "error"), 40)
    text = printable(msg.get("message", ""), 200)
    return TargetError(f"{where} said {code}: {text}".rstrip(": "), code=code)
