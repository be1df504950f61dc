"""A bulk-transfer peer for the coverage tests: an HTTP server on ADDR:PORT
that answers `GET /BYTES` with BYTES zero bytes and takes any `PUT`, reading
its body to the end. Prints `ready` once it listens.

usage: bulk_http.py ADDR PORT
"""

import http.server
import socketserver
import sys

CHUNK = bytes(1 << 20)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        size = int(self.path.strip("/"))
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        while size > 0:
            n = min(size, len(CHUNK))
            self.wfile.write(CHUNK[:n])
            size -= n

    def do_PUT(self):
        left = int(self.headers["Content-Length"])
        while left > 0:
            got = self.rfile.read(min(left, len(CHUNK)))
            if not got:
                break
            left -= len(got)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server((sys.argv[1], int(sys.argv[2])), Handler)
print("ready", flush=True)
server.serve_forever()
