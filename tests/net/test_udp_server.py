"""The server's UDP side on real loopback sockets: ownership, replies from the
probed address, the 3x budget, and nothing back for junk or strangers."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from probe.core.udp_table import AMPLIFICATION, UdpLimits
from probe.core.udp_wire import CLIENT_SIZE, MIN_CLIENT_SIZE, Datagram, Kind, parse_server
from probe.net.server import ProbeServer
from tests.conftest import scaled
from tests.net.helpers import Client, run_with_server


def udp_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, port))
    sock.setblocking(False)
    return sock


async def recv_datagram(sock: socket.socket, wait_s: float = 5.0) -> Datagram:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(scaled(wait_s)):
        data = await loop.sock_recv(sock, 2048)
    parsed = parse_server(data)
    assert parsed is not None, data
    return parsed


async def control(port: int) -> Client:
    client = await Client.connect(port)
    client.send({"op": "hello", "v": 1})
    assert (await client.recv())["op"] == "welcome"
    return client


async def next_op(client: Client, op: str) -> dict[str, Any]:
    for _ in range(20):
        msg = await client.recv()
        if msg["op"] == op:
            return msg
    raise AssertionError(f"no {op}")


async def new_probe(client: Client) -> bytes:
    client.send({"op": "udp_open", "id": "u"})
    answer = await next_op(client, "udp_probe")
    assert isinstance(answer["probe"], str) and len(answer["probe"]) == 32
    return bytes.fromhex(answer["probe"])


def with_udp(body: Any, udp_host: str = "127.0.0.1", **config: Any) -> None:
    async def wrapped(server: ProbeServer, port: int) -> None:
        _, udp_port = await server.listen_udp(udp_host, 0)
        await body(server, port, udp_port)

    run_with_server(wrapped, **config)


def test_welcome_names_the_udp_port_and_a_probe_answers_from_the_address_it_was_sent_to() -> None:
    # Bound to the wildcard, the server must answer 127.0.0.2 from 127.0.0.2:
    # a connected socket (like a NAT binding) drops datagrams from anywhere else.
    async def body(server: ProbeServer, port: int, udp_port: int) -> None:
        client = await Client.connect(port)
        client.send({"op": "hello", "v": 1})
        welcome = await client.recv()
        assert welcome["udp"] == [udp_port]
        probe = await new_probe(client)
        sock = udp_socket("127.0.0.2", udp_port)
        sock.send(Datagram(Kind.ECHO, probe, 5).encode(CLIENT_SIZE))
        reply = await recv_datagram(sock)
        assert reply.kind is Kind.REPLY and reply.seq == 5 and reply.probe == probe
        seen = await next_op(client, "udp_seen")
        assert seen["observed"] == f"127.0.0.1:{sock.getsockname()[1]}"
        assert seen["replied"] is True and seen["rebound"] is False
        client.send({"op": "push_now", "id": "p1", "probe": probe.hex()})
        pushed = await next_op(client, "pushed")
        assert pushed["sent"] is True and pushed["copies"] == 3 and pushed["probe"] == probe.hex()
        copies = [await recv_datagram(sock) for _ in range(3)]
        assert {c.kind for c in copies} == {Kind.PUSH}
        sock.close()

    with_udp(body, udp_host="0.0.0.0")


def test_an_unvalidated_address_receives_at_most_three_times_what_it_sent() -> None:
    async def body(server: ProbeServer, port: int, udp_port: int) -> None:
        client = await control(port)
        probe = await new_probe(client)
        sock = udp_socket("127.0.0.1", udp_port)
        sock.send(Datagram(Kind.HELLO, probe).encode(MIN_CLIENT_SIZE))
        await next_op(client, "udp_seen")
        answers = []
        for n in range(10):
            client.send({"op": "push_now", "id": f"p{n}", "probe": probe.hex()})
            answers.append(await next_op(client, "pushed"))
        copies = sum(a.get("copies", 0) for a in answers)
        assert answers[-1] == {"op": "pushed", "id": "p9", "probe": probe.hex(), "sent": False,
                               "reason": "amplification"}  # fmt: skip
        # Everything the server sent arrives, and it is within the budget.
        received = 0
        for _ in range(copies):
            received += len((await recv_datagram(sock)).encode())
        assert 0 < received <= AMPLIFICATION * MIN_CLIENT_SIZE
        sock.close()

    with_udp(body)


def test_echoing_the_cookie_lifts_the_budget() -> None:
    async def body(server: ProbeServer, port: int, udp_port: int) -> None:
        client = await control(port)
        probe = await new_probe(client)
        sock = udp_socket("127.0.0.1", udp_port)
        sock.send(Datagram(Kind.ECHO, probe).encode(MIN_CLIENT_SIZE))
        reply = await recv_datagram(sock)
        sock.send(Datagram(Kind.HELLO, probe, 2, reply.cookie).encode(MIN_CLIENT_SIZE))
        seen = [await next_op(client, "udp_seen") for _ in range(2)]
        assert seen[1]["validated"] is True
        for n in range(10):
            client.send({"op": "push_now", "id": f"p{n}", "probe": probe.hex(), "copies": 1})
            assert (await next_op(client, "pushed"))["sent"] is True
        assert len([await recv_datagram(sock) for _ in range(10)]) == 10
        sock.close()

    with_udp(body)


def test_junk_and_unknown_probes_get_nothing_back() -> None:
    # UDP on loopback keeps order: the first datagram back must answer the
    # valid echo sent last, so nothing was sent for what came before it.
    async def body(server: ProbeServer, port: int, udp_port: int) -> None:
        client = await control(port)
        probe = await new_probe(client)
        sock = udp_socket("127.0.0.1", udp_port)
        for junk in (b"", b"x" * 500, Datagram(Kind.ECHO, bytes(16)).encode(CLIENT_SIZE),
                     Datagram(Kind.ECHO, probe).encode(MIN_CLIENT_SIZE - 1), b"\0" * 1300,
                     Datagram(Kind.PUSH, probe).encode(CLIENT_SIZE)):  # fmt: skip
            sock.send(junk)
        sock.send(Datagram(Kind.ECHO, probe, 77).encode(CLIENT_SIZE))
        first = await recv_datagram(sock)
        assert first.kind is Kind.REPLY and first.seq == 77
        assert server.udp.dropped == 6
        sock.close()

    with_udp(body)


def test_probes_belong_to_their_control_session_and_end_with_it() -> None:
    async def body(server: ProbeServer, port: int, udp_port: int) -> None:
        owner = await control(port)
        other = await control(port)
        probe = await new_probe(owner)
        sock = udp_socket("127.0.0.1", udp_port)
        sock.send(Datagram(Kind.HELLO, probe).encode(CLIENT_SIZE))
        await next_op(owner, "udp_seen")
        other.send({"op": "push_now", "id": "x", "probe": probe.hex()})
        assert (await next_op(other, "pushed"))["reason"] == "unknown_probe"
        other.send({"op": "release", "probe": probe.hex()})  # not its own: ignored
        other.send({"op": "ping", "id": "sync"})
        await next_op(other, "pong")
        assert probe in server.udp.probes
        # Half-close; the server's FIN back comes once it has ended the session.
        owner.writer.write_eof()
        assert await owner.closed()
        assert server.udp.probes == {} and server.udp.by_owner == {}
        sock.close()

    with_udp(body)


def test_release_frees_a_probe_and_limits_refuse_past_them() -> None:
    async def body(server: ProbeServer, port: int, udp_port: int) -> None:
        client = await control(port)
        first = await new_probe(client)
        await new_probe(client)
        client.send({"op": "udp_open", "id": "third"})
        assert await next_op(client, "udp_probe") == {"op": "udp_probe", "id": "third", "probe": None,
                                                       "reason": "session_full"}  # fmt: skip
        client.send({"op": "release", "probe": first.hex()})
        await new_probe(client)
        assert len(server.udp.probes) == 2

    with_udp(body, udp=UdpLimits(max_per_owner=2))


def test_without_a_udp_listener_udp_open_says_so() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        client = await control(port)
        client.send({"op": "udp_open", "id": "u"})
        assert await next_op(client, "udp_probe") == {"op": "udp_probe", "id": "u", "probe": None, "reason": "no_udp"}

    run_with_server(body)


def test_a_malformed_probe_id_is_a_protocol_error() -> None:
    async def body(server: ProbeServer, port: int, udp_port: int) -> None:
        client = await control(port)
        client.send({"op": "push_now", "id": "p", "probe": "zz"})
        error = await next_op(client, "error")
        assert error["code"] == "bad_probe"

    with_udp(body)
