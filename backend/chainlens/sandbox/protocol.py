"""Frames between the server and a worker process: 1 kind byte, 4 length bytes, payload.

Kinds: ``J`` the job (server -> worker), ``S`` the job started (empty), ``E`` stream
events (JSON, one per line: orjson never writes a raw newline), ``O`` what the program
printed in the events just sent (UTF-8 text: the server keeps it for a Run it must make
itself, on a timeout or a lost worker), ``D`` the finished Run as JSON without its
``id`` (the server gives it the id of the request it answers: ``runs.with_id``), ``R`` a
refusal (the program was not run; JSON error), ``F`` the worker failed
and is exiting (JSON ``{"type", "message"}``: the exception it could not handle), ``P``
(empty, just before ``D``) the Run may answer the same request again: it ran on the CPU
(a GPU's kernels may sum in another order each time) and ended by itself or by the
program's own exception (never by a limit or the clock, which depend on the machine).
``d`` (just before ``D``, for a job that asks for it with ``"delta"``) the Run less what
the events carried (``delta.run_delta``), with its ``id``: it answers this request alone.

The template reports each worker's end on a socket of its own, as ``EXIT_RECORD``s:
the worker's pid and its wait status (``os.waitpid``'s).
"""

from __future__ import annotations

import asyncio
import socket
import struct

HEADER = struct.Struct(">cI")
JOB, STARTED, EVENT, OUTPUT, DONE, REFUSED, FAILED = b"J", b"S", b"E", b"O", b"D", b"R", b"F"
REPEATABLE, DELTA = b"P", b"d"
EXIT_RECORD = struct.Struct(">qi")
#: What the server's pool adds for the runs it ends itself: the wall clock ran out; the
#: worker ended without answering (JSON ``{"code", "message"}``: how, as far as is known).
TIMEOUT, LOST = b"T", b"L"
MAX_FRAME = 256 * 1024 * 1024


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(HEADER.pack(kind, len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("peer closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes]:
    kind, size = HEADER.unpack(_recv_exact(sock, HEADER.size))
    if size > MAX_FRAME:
        raise EOFError("frame too large")
    return kind, _recv_exact(sock, size)


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    kind, size = HEADER.unpack(await reader.readexactly(HEADER.size))
    if size > MAX_FRAME:
        raise EOFError("frame too large")
    return kind, await reader.readexactly(size)


def write_frame(writer: asyncio.StreamWriter, kind: bytes, payload: bytes) -> None:
    writer.write(HEADER.pack(kind, len(payload)) + payload)
