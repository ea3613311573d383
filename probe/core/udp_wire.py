"""natprobe's UDP datagrams, without I/O: encoding and a parser that never raises.

A UDP probe is one client socket (one source port, one NAT binding) that the
server knows by a 16-byte id it issued over the control connection. Every
datagram is a fixed header, then zero padding (docs/protocol.md):

    magic "NPU1" (4) | kind (1) | probe id (16) | seq (4, big-endian) | cookie (8)

The client pads what it sends to ``CLIENT_SIZE`` bytes; the server never pads,
so nothing it sends before an address is validated is larger than what it got.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

MAGIC = b"NPU1"
HEADER = struct.Struct("!4sB16sI8s")
#: Bytes of the fixed header: every natprobe datagram is at least this long.
HEADER_SIZE = HEADER.size
#: What a client's datagrams are padded to: each one grants the server a
#: budget of 3x this many bytes towards an address not yet validated.
CLIENT_SIZE = 200
#: A client datagram shorter than this is dropped: it would grant too little
#: budget to answer, and junk is cheap to send.
MIN_CLIENT_SIZE = 64
#: Longer datagrams are dropped unread (also the receive buffer size needed).
MAX_DATAGRAM = 1200
PROBE_ID_SIZE = 16
COOKIE_SIZE = 8
NO_COOKIE = bytes(COOKIE_SIZE)
MAX_SEQ = 0xFFFFFFFF


class Kind(IntEnum):
    #: Client: bind this probe to my address; send nothing back.
    HELLO = 1
    #: Client: the same, and answer with a REPLY (carrying a cookie).
    ECHO = 2
    #: Server: the answer to ECHO.
    REPLY = 0x81
    #: Server: a push the control connection asked for.
    PUSH = 0x82


CLIENT_KINDS = frozenset({Kind.HELLO, Kind.ECHO})
SERVER_KINDS = frozenset({Kind.REPLY, Kind.PUSH})


@dataclass(frozen=True)
class Datagram:
    kind: Kind
    probe: bytes
    seq: int = 0
    #: A client echoes the cookie of a REPLY it received: proof that its
    #: address can receive, after which the server's 3x limit no longer applies.
    cookie: bytes = NO_COOKIE

    def encode(self, size: int = 0) -> bytes:
        """The datagram, zero-padded to ``size`` bytes (never truncated)."""
        head = HEADER.pack(MAGIC, self.kind, self.probe, self.seq, self.cookie)
        return head + bytes(max(0, min(size, MAX_DATAGRAM) - len(head)))


def parse(data: bytes, kinds: frozenset[Kind]) -> Datagram | None:
    """The datagram in ``data`` if it is a well-formed one of ``kinds``, else None.

    Never raises: the server calls it on whatever arrives from anywhere.
    """
    if not HEADER_SIZE <= len(data) <= MAX_DATAGRAM:
        return None
    magic, kind, probe, seq, cookie = HEADER.unpack_from(data)
    if magic != MAGIC or kind not in kinds:
        return None
    return Datagram(Kind(kind), probe, seq, cookie)


def parse_client(data: bytes) -> Datagram | None:
    """A client datagram the server may act on: well-formed and padded enough."""
    if len(data) < MIN_CLIENT_SIZE:
        return None
    return parse(data, CLIENT_KINDS)


def parse_server(data: bytes) -> Datagram | None:
    return parse(data, SERVER_KINDS)
