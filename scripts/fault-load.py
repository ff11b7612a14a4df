#!/usr/bin/env python3
"""A load of createPatient for the fault suite (scripts/faults).

Each of --connections threads sends createPatient mutations, each with a
name of its own and an Idempotency-Key, for --seconds. A retryable failure
(HTTP 503, or 502 and 504 from a proxy, a GraphQL error with
extensions.retryable, a connection refused, reset or timed out) is retried with the same key and body after a short
pause, for up to --retry-for seconds; --no-retry turns that off. At the end
it writes a JSON report: what was sent, acknowledged (name -> id), the
errors, and when the errors began and ended.

    scripts/fault-load.py --url http://127.0.0.1:8000 --token T --seconds 20 \\
        --connections 8 --out report.json
"""

import argparse
import http.client
import json
import socket
import threading
import time
import uuid

CREATE = "mutation($i: CreatePatientInput!) { createPatient(input: $i) { id name } }"


def post(host, port, token, key, name, timeout):
    """One attempt: ('ok', id) | ('retryable', why) | ('failed', why)."""
    body = json.dumps({"query": CREATE, "variables": {"i": {"name": name}}})
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {token}",
        "idempotency-key": key,
    }
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/graphql", body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except (ConnectionError, socket.timeout, http.client.HTTPException, OSError) as e:
        return "retryable", f"transport: {type(e).__name__}"
    finally:
        conn.close()
    if resp.status in (502, 503, 504):
        # 503: the server's own retryable answer; 502 and 504: a proxy lost
        # the server under the request, whose outcome is unknown.
        return "retryable", f"http {resp.status}"
    try:
        answer = json.loads(raw)
    except ValueError:
        return "failed", f"http {resp.status}: not JSON"
    data = (answer.get("data") or {}).get("createPatient")
    if data and not answer.get("errors"):
        return "ok", data["id"]
    errors = answer.get("errors") or [{}]
    ext = errors[0].get("extensions") or {}
    code = ext.get("code", f"http {resp.status}")
    if ext.get("retryable"):
        return "retryable", code
    return "failed", code


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--retry-for", type=float, default=30)
    p.add_argument("--no-retry", action="store_true")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--prefix", default="fault")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    host, port = a.url.split("//", 1)[1].rsplit(":", 1)
    port = int(port)

    lock = threading.Lock()
    report = {
        "sent": 0,
        "attempts": 0,
        "acknowledged": {},
        "failed": {},
        "errors": [],
        "unresolved": [],
        "slowest_failure": 0,
    }
    start = time.monotonic()
    deadline = start + a.seconds

    def worker(n):
        i = 0
        while time.monotonic() < deadline:
            i += 1
            name = f"{a.prefix}-{n}-{i}"
            key = str(uuid.uuid4())
            with lock:
                report["sent"] += 1
            give_up = time.monotonic() + (0 if a.no_retry else a.retry_for)
            while True:
                sent = time.monotonic()
                outcome, value = post(host, port, a.token, key, name, a.timeout)
                at = round(time.monotonic() - start, 3)
                took = time.monotonic() - sent
                with lock:
                    report["attempts"] += 1
                    if outcome != "ok":
                        report["errors"].append([at, value])
                        report["slowest_failure"] = max(report["slowest_failure"], round(took, 3))
                if outcome == "ok":
                    with lock:
                        report["acknowledged"][name] = value
                    break
                if outcome == "failed":
                    with lock:
                        report["failed"][name] = value
                    break
                if time.monotonic() >= give_up:
                    with lock:
                        report["unresolved"].append(name)
                    break
                time.sleep(0.2)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = [t for t, _ in report["errors"]]
    report["error_window"] = [min(times), max(times)] if times else None
    report["seconds"] = round(time.monotonic() - start, 3)
    with open(a.out, "w") as f:
        json.dump(report, f)
    print(
        f"sent {report['sent']}, acknowledged {len(report['acknowledged'])}, "
        f"errors {len(report['errors'])}, failed {len(report['failed'])}, unresolved {len(report['unresolved'])}"
    )


if __name__ == "__main__":
    main()
