"""DNS as a resolver sees it, for the coverage tests. Three roles:

auth ADDRS
    Authoritative servers, one on each of ADDRS (comma-separated), port 53
    (each its own socket, so that it answers from the address asked):
    answers every query with an A record, and a TXT record of 100-400 bytes
    for one query in four. Prints `ready`.
resolver ADDR SERVERS
    A recursive resolver on ADDR:53: forwards each client query to one of
    SERVERS (comma-separated) from a fresh random port, as resolvers do
    against spoofing, and relays the answer. Prints `ready`.
clients RESOLVER RATE SECS CLIENTS
    Clients querying RESOLVER from CLIENTS (comma-separated) in turn, RATE
    queries a second for SECS seconds, each for a name of its own. Prints
    `answered N of M`; fails if fewer than 99% were answered.
"""

import random
import select
import socket
import struct
import sys
import time


def name(labels):
    return b"".join(bytes([len(l)]) + l for l in labels) + b"\0"


def answer(query):
    """The reply to `query`: the question echoed, one A record, a TXT one
    for one name in four."""
    qid, _flags = struct.unpack("!2H", query[:4])
    end = query.index(b"\0", 12) + 5
    question = query[12:end]
    records = [b"\xc0\x0c" + struct.pack("!2HIH", 1, 1, 300, 4) + bytes([198, 18, 3, qid % 250 + 1])]
    if qid % 4 == 0:
        text = b"v=nta " + b"x" * (100 + qid % 300)
        rdata = b"".join(bytes([len(c)]) + c for c in (text[i:i + 255] for i in range(0, len(text), 255)))
        records.append(b"\xc0\x0c" + struct.pack("!2HIH", 16, 1, 300, len(rdata)) + rdata)
    head = struct.pack("!6H", qid, 0x8180, 1, len(records), 0, 0)
    return head + question + b"".join(records)


def auth(addrs):
    socks = []
    for addr in addrs:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 53))
        socks.append(s)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            query, peer = s.recvfrom(2048)
            s.sendto(answer(query), peer)


def resolver(addr, servers):
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind((addr, 53))
    ep = select.epoll()
    ep.register(front, select.EPOLLIN)
    pending = {}
    print("ready", flush=True)
    while True:
        for fd, _ in ep.poll(1):
            if fd == front.fileno():
                query, client = front.recvfrom(2048)
                up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                up.bind((addr, 0))
                up.sendto(query, (random.choice(servers), 53))
                ep.register(up, select.EPOLLIN)
                pending[up.fileno()] = (up, client, time.monotonic())
            else:
                up, client, _ = pending.pop(fd)
                reply, _ = up.recvfrom(4096)
                front.sendto(reply, client)
                ep.unregister(fd)
                up.close()
        for fd in [fd for fd, p in pending.items() if time.monotonic() - p[2] > 5]:
            ep.unregister(fd)
            pending.pop(fd)[0].close()


def clients(resolver_addr, rate, secs, sources):
    socks = []
    for src in sources:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        socks.append(s)
    sent = answered = 0
    t0 = time.monotonic()
    while True:
        now = time.monotonic() - t0
        while now < secs and sent < int(now * rate) + 1:
            labels = (b"host%d" % sent, b"example%d" % (sent % 37), b"nta", b"test")
            q = struct.pack("!6H", sent % 65536, 0x0100, 1, 0, 0, 0) + name(labels) + struct.pack("!2H", 1, 1)
            socks[sent % len(socks)].sendto(q, (resolver_addr, 53))
            sent += 1
        if now > secs + 3 or (now >= secs and answered >= sent):
            break
        ready, _, _ = select.select(socks, [], [], 0.002)
        for s in ready:
            while True:
                try:
                    s.recv(4096)
                    answered += 1
                except BlockingIOError:
                    break
    print(f"answered {answered} of {sent}", flush=True)
    sys.exit(0 if answered * 100 >= sent * 99 else 1)


role = sys.argv[1]
if role == "auth":
    auth(sys.argv[2].split(","))
elif role == "resolver":
    resolver(sys.argv[2], sys.argv[3].split(","))
else:
    clients(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5].split(","))
