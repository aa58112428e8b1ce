#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the S3 tests: sits between shardflow and the S3 server on
127.0.0.1 and, for a seeded random fraction of requests, answers 503 SlowDown or 500
InternalError, or closes the connection without an answer.

  fault_proxy.py --upstream http://127.0.0.1:PORT --port-file F [--rate 0.2] [--seed 1]
                 [--fail-first-part] [--fail-puts [--fail-puts-matching S]]
                 [--fail-gets-matching S [--fail-gets-after N]] [--drop-answer-matching S]

A dropped connection is closed before the request is forwarded, or, for GET, HEAD and PUT
(idempotent), after forwarding, with the answer lost. --fail-puts answers every PUT (whole
objects and multipart parts; with --fail-puts-matching S only those whose path contains S) with
500 instead, so no such upload can succeed. --fail-gets-matching S answers every GET whose path
contains S with 503, except the first N of them (--fail-gets-after N): an object readable at
first that the storage then fails to serve. --drop-answer-matching S forwards the first request
whose path contains S and closes the connection instead of answering: the request took
effect, its answer was lost. The proxy listens on
a free port, writes it to --port-file, and appends one line per injected fault to
<port-file>.faults, and each access key id it sees signing requests to <port-file>.keys.
"""

import argparse
import http.client
import os
import random
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
INTERNAL = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "content-length"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fail-first-part", action="store_true", help="answer the first multipart part upload with 503")
    ap.add_argument("--fail-puts", action="store_true")
    ap.add_argument("--fail-puts-matching", default="", help="with --fail-puts: only PUTs whose path contains this")
    ap.add_argument("--fail-gets-matching", default="", help="answer GETs whose path contains this with 503")
    ap.add_argument("--fail-gets-after", type=int, default=0, help="with --fail-gets-matching: pass this many first")
    ap.add_argument("--drop-answer-matching", default="", help="drop the answer of the first request whose path contains this")
    args = ap.parse_args()
    up = urllib.parse.urlparse(args.upstream)
    rng = random.Random(args.seed)
    lock = threading.Lock()
    faults_path = args.port_file + ".faults"
    open(faults_path, "w").close()

    keys_path = args.port_file + ".keys"
    open(keys_path, "w").close()
    keys_seen = set()

    def record_key(auth):
        # SigV4: "AWS4-HMAC-SHA256 Credential=AKID/date/region/s3/aws4_request, ..."
        if "Credential=" not in auth:
            return
        akid = auth.split("Credential=", 1)[1].split("/", 1)[0]
        with lock:
            if akid not in keys_seen:
                keys_seen.add(akid)
                with open(keys_path, "a") as f:
                    f.write(akid + "\n")

    def record(kind, method, path):
        with lock, open(faults_path, "a") as f:
            f.write(f"{kind} {method} {path}\n")

    first_part = [args.fail_first_part]
    gets_passed = [0]
    answer_dropped = [False]

    def drop_answer(path):
        if not args.drop_answer_matching or args.drop_answer_matching not in path:
            return False
        with lock:
            if answer_dropped[0]:
                return False
            answer_dropped[0] = True
            return True

    def fail_get(path):
        if not args.fail_gets_matching or args.fail_gets_matching not in path:
            return False
        with lock:
            if gets_passed[0] < args.fail_gets_after:
                gets_passed[0] += 1
                return False
        return True

    def draw(path):
        with lock:
            if first_part[0] and "partNumber=" in path:
                first_part[0] = False
                return "503"
            if rng.random() >= args.rate:
                return None
            return rng.choice(["503", "500", "drop-before", "drop-after"])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            if not any(k.lower() == "content-length" for k, _ in headers):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def drop(self):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def forward(self, body):
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            if body is not None:
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            # a HEAD answer's Content-Length is the object's size: keep it
            keep = HOP - {"content-length"} if self.command == "HEAD" else HOP
            out = [(k, v) for k, v in r.getheaders() if k.lower() not in keep]
            conn.close()
            return r.status, data, out

        def handle_any(self):
            record_key(self.headers.get("Authorization", ""))
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else (b"" if self.command in ("PUT", "POST") else None)
            if args.fail_puts and self.command == "PUT" and args.fail_puts_matching in self.path:
                record("500", self.command, self.path)
                return self.answer(500, INTERNAL, [("Content-Type", "application/xml")])
            if self.command == "GET" and fail_get(self.path):
                record("503", self.command, self.path)
                return self.answer(503, SLOWDOWN, [("Content-Type", "application/xml")])
            targeted = args.fail_puts or args.fail_gets_matching or args.drop_answer_matching
            fault = None if targeted else draw(self.path)
            if drop_answer(self.path):
                fault = "drop-after"
            if fault == "503":
                record(fault, self.command, self.path)
                return self.answer(503, SLOWDOWN, [("Content-Type", "application/xml")])
            if fault == "500":
                record(fault, self.command, self.path)
                return self.answer(500, INTERNAL, [("Content-Type", "application/xml")])
            if fault == "drop-before" or (
                fault == "drop-after" and self.command not in ("GET", "HEAD", "PUT")
            ):
                record("drop-before", self.command, self.path)
                return self.drop()
            status, data, headers = self.forward(body)
            if fault == "drop-after":
                record(fault, self.command, self.path)
                return self.drop()
            self.answer(status, data, headers)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
