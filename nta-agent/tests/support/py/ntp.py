"""NTP for the coverage tests. Two roles:

ntpd ADDRS PEERS ROUNDS GAP
    As ntpd does, one socket on port 123 of each of ADDRS (comma-separated;
    each answers from its own address) both answers every request with a mode-4 reply of 48 bytes
    and asks each of PEERS (comma-separated, or `-` for none) ROUNDS times,
    GAP seconds apart, from port 123 to port 123 (ntpd's iburst sends 8
    requests 2 s apart; the tests shorten the gap). Prints `ready` when it
    listens, `answered N of M` when its rounds are over (fewer than 99%
    answered prints `FAILED`), and serves on.
sntp SERVERS ROUNDS GAP SOURCES
    SNTP clients, one per address of SOURCES (comma-separated), each from
    an ephemeral port, asking each of SERVERS ROUNDS times, GAP seconds
    apart. Prints `answered N of M`; fails if fewer than 99% were answered.
"""

import select
import socket
import struct
import sys
import time

NTP_EPOCH = 2208988800


def stamp():
    t = time.time() + NTP_EPOCH
    return struct.pack("!2I", int(t), int((t % 1) * 2**32))


def request():
    return struct.pack("!4B3I", 0x23, 0, 6, 0xEC, 0, 0, 0) + bytes(24) + stamp()


def reply(req):
    received = stamp()
    head = struct.pack("!4B3I", 0x24, 2, req[2], 0xEC, 0, 0, 0x7F000001)
    return head + received + req[40:48] + received + stamp()


def report(answered, sent):
    ok = answered * 100 >= sent * 99
    print(f"answered {answered} of {sent}{'' if ok else ' FAILED'}", flush=True)
    return ok


def ntpd(addrs, peers, rounds, gap):
    socks = []
    for addr in addrs:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((addr, 123))
        socks.append(sock)
    s = socks[0]
    print("ready", flush=True)
    sent = answered = 0
    next_round, done = time.monotonic(), 0
    while True:
        if peers and done < rounds and time.monotonic() >= next_round:
            for peer in peers:
                s.sendto(request(), (peer, 123))
                sent += 1
            done += 1
            next_round += gap
        elif peers and done == rounds and time.monotonic() >= next_round:
            report(answered, sent)
            done += 1
        ready, _, _ = select.select(socks, [], [], 0.01)
        for sock in ready:
            msg, peer = sock.recvfrom(1024)
            if len(msg) < 48:
                continue
            if msg[0] & 7 == 3:
                sock.sendto(reply(msg), peer)
            elif msg[0] & 7 == 4:
                answered += 1


def sntp(servers, rounds, gap, sources):
    socks = []
    for addr in sources:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 0))
        socks.append(s)
    sent = answered = 0
    for _ in range(rounds):
        for s in socks:
            for srv in servers:
                s.sendto(request(), (srv, 123))
                sent += 1
        deadline = time.monotonic() + gap
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(socks, [], [], left)
            for s in ready:
                s.recv(1024)
                answered += 1
    sys.exit(0 if report(answered, sent) else 1)


if sys.argv[1] == "ntpd":
    peers = [] if sys.argv[3] == "-" else sys.argv[3].split(",")
    ntpd(sys.argv[2].split(","), peers, int(sys.argv[4]), float(sys.argv[5]))
else:
    sntp(sys.argv[2].split(","), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5].split(","))
