"""A small web server for the coverage tests: listens on ADDR at each of
PORTS (comma-separated), answers every request (whatever comes up to a blank
line) with a small page, and closes. One epoll loop, cheap enough to take
thousands of clients a second. Prints `ready` once it listens.

usage: tcp_server.py ADDR PORTS
"""

import select
import socket
import sys

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n"
    b"Connection: close\r\n\r\nnta web ok\r\n"
)

addr, ports = sys.argv[1], [int(p) for p in sys.argv[2].split(",")]
ep = select.epoll()
listeners = {}
for port in ports:
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(4096)
    ls.setblocking(False)
    ep.register(ls, select.EPOLLIN)
    listeners[ls.fileno()] = ls
conns = {}
print("ready", flush=True)
while True:
    for fd, _ in ep.poll():
        if fd in listeners:
            while True:
                try:
                    c, _ = listeners[fd].accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                conns[c.fileno()] = [c, b""]
                ep.register(c, select.EPOLLIN)
            continue
        c, buf = conns[fd]
        try:
            data = c.recv(4096)
        except OSError:
            data = b""
        buf += data
        if data and b"\r\n\r\n" not in buf:
            conns[fd][1] = buf
            continue
        if data:
            try:
                c.send(RESPONSE)
            except OSError:
                pass
        ep.unregister(fd)
        del conns[fd]
        c.close()
