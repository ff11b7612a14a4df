#!/usr/bin/env python3
"""Fairness of the bcrypt work between client addresses: one address logs
in once a second while another floods the server with registrations from
--flood connections, and the first one's login latency is what counts.

Runs for --seconds with the flood and, first, as long without it; prints one
line of JSON: the logins' p50 and p99 alone and during the flood, and what
the flood got (registrations made, refused with 429, other answers).

    bench/fairness.py --url http://127.0.0.1:18000 --email a@example.org \\
        --password '...' --seconds 20 --flood 16

The flood comes from 127.0.0.2 and the logins from 127.0.0.3 (without the
flood, from 127.0.0.4): all of 127.0.0.0/8 is loopback, so they are
different clients of the same server. At one login a second, --seconds
above 20 would take the logins themselves past the default AUTH_RATE_LIMIT.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from overload import exchange, percentile  # noqa: E402

FLOOD_FROM = "127.0.0.2"
LOGIN_FROM = "127.0.0.3"
# The logins without the flood come from an address of their own, so that
# neither run's once-a-second logins use up the other's allowance.
ALONE_FROM = "127.0.0.4"


def request(host, port, path, body):
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\n\r\n"
    ).encode() + data


async def logins(host, port, email, password, seconds, source):
    """One login a second from `source`, each on a new connection, as a
    person signing in would: their latencies in ms and their statuses."""
    took, statuses = [], {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
        body = {"email": email, "password": password}
        status, _ = await exchange(reader, writer, request(host, port, "/api/auth/login", body))
        writer.close()
        took.append((time.monotonic() - started) * 1000)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return took, statuses


async def flood(host, port, connections, stop):
    """Registrations from FLOOD_FROM on `connections` keep-alive
    connections, each sent as soon as the last is answered."""
    counts = {}

    async def one():
        reader, writer = await asyncio.open_connection(host, port, local_addr=(FLOOD_FROM, 0))
        while not stop.is_set():
            body = {"name": "Flood", "email": f"flood-{uuid.uuid4().hex}@example.org",
                    "password": "flood password 1"}
            try:
                status, keep = await exchange(reader, writer, request(host, port, "/api/auth/register", body))
            except (OSError, asyncio.IncompleteReadError):
                status, keep = "lost", False
            counts[str(status)] = counts.get(str(status), 0) + 1
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port, local_addr=(FLOOD_FROM, 0))
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return counts


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--flood", type=int, default=16)
    a = p.parse_args()
    host, port = a.url.split("//", 1)[1].rsplit(":", 1)
    port = int(port)

    alone, alone_statuses = await logins(host, port, a.email, a.password, a.seconds, ALONE_FROM)
    stop = asyncio.Event()
    flooding = asyncio.create_task(flood(host, port, a.flood, stop))
    await asyncio.sleep(0.5)
    during, during_statuses = await logins(host, port, a.email, a.password, a.seconds, LOGIN_FROM)
    stop.set()
    counts = await flooding
    r = lambda v: None if v is None else round(v, 1)
    print(json.dumps({
        "alone_p50_ms": r(percentile(alone, 0.5)),
        "alone_p99_ms": r(percentile(alone, 0.99)),
        "alone_statuses": alone_statuses,
        "flood_p50_ms": r(percentile(during, 0.5)),
        "flood_p99_ms": r(percentile(during, 0.99)),
        "flood_max_ms": r(max(during) if during else None),
        "flood_statuses": during_statuses,
        "flood_answers": counts,
    }))


if __name__ == "__main__":
    asyncio.run(main())
