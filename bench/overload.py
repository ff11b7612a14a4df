#!/usr/bin/env python3
"""Overload: one GraphQL query from --connections keep-alive connections at
once for --seconds, each sending its next request as soon as the last is
answered. Reports the requests served (200) per second with their p50 and
p99 latency, and the requests refused (503) with their p99, as one line of
JSON. wrk cannot split latency by status, which is the point here.

    bench/overload.py --url http://127.0.0.1:18000 --token T --connections 256 \\
        --seconds 20 --query '...' --variables '{"n": 50}'
"""

import argparse
import http.client
import json
import threading
import time


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--query", required=True)
    p.add_argument("--variables", default="{}")
    a = p.parse_args()
    host, port = a.url.split("//", 1)[1].rsplit(":", 1)
    body = json.dumps({"query": a.query, "variables": json.loads(a.variables)})
    headers = {"content-type": "application/json", "authorization": f"Bearer {a.token}"}
    lock = threading.Lock()
    served, refused, other = [], [], {}
    start = time.monotonic()
    deadline = start + a.seconds
    ready = threading.Barrier(a.connections)

    def worker():
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine_served, mine_refused, mine_other = [], [], {}
        ready.wait()
        while time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                conn.request("POST", "/graphql", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as e:
                status = type(e).__name__
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
            took = (time.monotonic() - sent) * 1000
            if status == 200:
                mine_served.append(took)
            elif status == 503:
                mine_refused.append(took)
            else:
                mine_other[str(status)] = mine_other.get(str(status), 0) + 1
        conn.close()
        with lock:
            served.extend(mine_served)
            refused.extend(mine_refused)
            for k, v in mine_other.items():
                other[k] = other.get(k, 0) + v

    threads = [threading.Thread(target=worker) for _ in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
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
    main()
