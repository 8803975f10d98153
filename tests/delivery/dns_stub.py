"""A stand-in for cluster DNS (kube-dns): answers A queries for the names it is given, NXDOMAIN else.

    python tests/delivery/dns_stub.py --listen 10.203.1.1 --record gemma.team-a.svc.cluster.local=10.203.2.2

It serves UDP and TCP on port 53 (TCP for the "53 over TCP" half of the DNS egress rule) and never
forwards: a name it does not know does not exist, as for a pod in an air-gapped cluster. Only the
DNS message subset resolvers send for a lookup is handled: one question, class IN.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
import sys
import threading

TYPE_A = 1
CLASS_IN = 1
RCODE_NXDOMAIN = 3
RCODE_FORMERR = 1


def parse_question(message: bytes) -> tuple[int, int, str, int, bytes]:
    """(id, flags, lower-case name, qtype, raw question section) of a query with one question."""
    ident, flags, qdcount = struct.unpack("!HHH", message[:6])
    if qdcount != 1:
        raise ValueError("exactly one question expected")
    labels, offset = [], 12
    while (length := message[offset]) != 0:
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii").lower())
        offset += 1 + length
    qtype, _qclass = struct.unpack("!HH", message[offset + 1 : offset + 5])
    return ident, flags, ".".join(labels), qtype, message[12 : offset + 5]


def answer(message: bytes, records: dict[str, str]) -> bytes:
    """The response to one query: the A record when known, no data for other types, NXDOMAIN else."""
    try:
        ident, flags, name, qtype, question = parse_question(message)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError):
        return struct.pack(
            "!HHHHHH", int.from_bytes(message[:2] or b"\0\0", "big"), 0x8000 | RCODE_FORMERR, 0, 0, 0, 0
        )
    response_flags = 0x8000 | 0x0400 | (flags & 0x0100)  # QR, AA, copy RD
    address = records.get(name.rstrip("."))
    if address is None:
        return struct.pack("!HHHHHH", ident, response_flags | RCODE_NXDOMAIN, 1, 0, 0, 0) + question
    if qtype != TYPE_A:
        return struct.pack("!HHHHHH", ident, response_flags, 1, 0, 0, 0) + question
    record = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, 5, 4) + ipaddress.IPv4Address(address).packed
    return struct.pack("!HHHHHH", ident, response_flags, 1, 1, 0, 0) + question + record


def serve_udp(sock: socket.socket, records: dict[str, str]) -> None:
    while True:
        message, peer = sock.recvfrom(4096)
        sock.sendto(answer(message, records), peer)


def serve_tcp(sock: socket.socket, records: dict[str, str]) -> None:
    while True:
        conn, _ = sock.accept()
        with conn:
            header = conn.recv(2)
            if len(header) == 2:
                (length,) = struct.unpack("!H", header)
                message = conn.recv(length)
                reply = answer(message, records)
                conn.sendall(struct.pack("!H", len(reply)) + reply)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--record", action="append", default=[], help="name=IPv4 (repeatable)")
    args = parser.parse_args(argv)
    records = {}
    for item in args.record:
        name, _, address = item.partition("=")
        records[name.lower().rstrip(".")] = str(ipaddress.IPv4Address(address))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((args.listen, args.port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((args.listen, args.port))
    tcp.listen(16)
    threading.Thread(target=serve_tcp, args=(tcp, records), daemon=True).start()
    print("ready", flush=True)
    serve_udp(udp, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
