#!/usr/bin/env python3
"""Overload: one GraphQL query from --connections keep-alive connections at
once for --seconds, each sending its next request as soon as the last is
answered. Reports the requests served (200) per second with their p50 and
p99 latency, and the requests refused (503) with their p99, as one line of
JSON. wrk cannot split latency by status, which is the point here.

One asyncio loop drives every connection (threads would measure the
interpreter's lock as much as the server).

    bench/overload.py --url http://127.0.0.1:18000 --token T --connections 256 \\
        --seconds 20 --query '...' --variables '{"n": 50}'
"""

import argparse
import asyncio
import json
import time


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def exchange(reader, writer, request):
    """Sends one request, reads its answer: (status, keep_alive)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers.get("connection") != "close"


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--query", required=True)
    p.add_argument("--variables", default="{}")
    a = p.parse_args()
    host, port = a.url.split("//", 1)[1].rsplit(":", 1)
    body = json.dumps({"query": a.query, "variables": json.loads(a.variables)}).encode()
    request = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {a.token}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    served, refused, other = [], [], {}
    start = time.monotonic()
    deadline = start + a.seconds

    async def connection():
        reader = writer = None
        while time.monotonic() < deadline:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, int(port))
            sent = time.monotonic()
            try:
                status, keep = await exchange(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError) as e:
                other[type(e).__name__] = other.get(type(e).__name__, 0) + 1
                writer.close()
                writer = None
                continue
            took = (time.monotonic() - sent) * 1000
            if status == 200:
                served.append(took)
            elif status == 503:
                # The connection stays open unless the server says otherwise:
                # like wrk, the next request goes out on it at once.
                refused.append(took)
            else:
                other[str(status)] = other.get(str(status), 0) + 1
            if not keep:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(a.connections)))
    seconds = time.monotonic() - start
    r = lambda v: None if v is None else round(v, 2)
    print(json.dumps({
        "connections": a.connections,
        "served_per_s": round(len(served) / seconds, 1),
        "served_p50_ms": r(percentile(served, 0.5)),
        "served_p99_ms": r(percentile(served, 0.99)),
        "refused": len(refused),
        "refused_per_s": round(len(refused) / seconds, 1),
        "refused_p99_ms": r(percentile(refused, 0.99)),
        "other": other,
    }))


if __name__ == "__main__":
    asyncio.run(main())
