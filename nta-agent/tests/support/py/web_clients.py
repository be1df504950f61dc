"""Many web clients for the coverage tests: RATE new connections a second to
TARGET:PORT for SECS seconds, each from the next of CLIENTS (comma-separated
source addresses), each fetching a page and closing. One epoll loop. Prints
`ok N failed M in S s: R connections/s`; fails if more than 1% failed.

usage: web_clients.py TARGET PORT RATE SECS CLIENTS
"""

import select
import socket
import sys
import time

target, port = sys.argv[1], int(sys.argv[2])
rate, secs = float(sys.argv[3]), float(sys.argv[4])
clients = sys.argv[5].split(",")
REQUEST = b"GET / HTTP/1.1\r\nHost: web\r\nUser-Agent: nta-coverage-client\r\n\r\n"
ep = select.epoll()
conns = {}
started = ok = failed = 0


def start():
    global started, failed
    s = socket.socket()
    s.setblocking(False)
    src = clients[started % len(clients)]
    started += 1
    try:
        s.bind((src, 0))
        s.connect_ex((target, port))
    except OSError:
        failed += 1
        s.close()
        return
    conns[s.fileno()] = [s, b"", False, time.monotonic()]
    ep.register(s, select.EPOLLOUT | select.EPOLLIN)


def drop(fd):
    ep.unregister(fd)
    conns.pop(fd)[0].close()


t0 = time.monotonic()
while True:
    now = time.monotonic() - t0
    if now < secs:
        while started < int(now * rate) + 1:
            start()
    elif not conns:
        break
    for fd, ev in ep.poll(0.001):
        entry = conns[fd]
        s = entry[0]
        if ev & (select.EPOLLERR | select.EPOLLHUP) and not ev & select.EPOLLIN:
            failed += 1
            drop(fd)
            continue
        if not entry[2] and ev & select.EPOLLOUT:
            try:
                s.send(REQUEST)
            except OSError:
                failed += 1
                drop(fd)
                continue
            entry[2] = True
            ep.modify(fd, select.EPOLLIN)
            continue
        if ev & select.EPOLLIN:
            try:
                data = s.recv(4096)
            except OSError:
                data = None
            if data:
                entry[1] += data
                continue
            if data is not None and b"200 OK" in entry[1]:
                ok += 1
            else:
                failed += 1
            drop(fd)
    for fd in [fd for fd, e in conns.items() if time.monotonic() - e[3] > 5]:
        failed += 1
        drop(fd)
took = time.monotonic() - t0
print(f"ok {ok} failed {failed} in {took:.2f} s: {started / secs:.0f} connections/s", flush=True)
sys.exit(1 if failed > started // 100 else 0)
