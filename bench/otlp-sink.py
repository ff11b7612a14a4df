#!/usr/bin/env python3
"""An OTLP/HTTP sink for bench/traces: answers every export with 200 and an
empty ExportTraceServiceResponse, and on SIGTERM prints how many exports and
bytes it took. It does not decode them (tests/api/traces.rs does)."""
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

exports = 0
received = 0


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global exports, received
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        exports += 1
        received += len(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def stop(*_):
    print(f"{exports} exports, {received / 1e6:.1f} MB", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
