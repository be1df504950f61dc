"""A client's FINs and RSTs on connections the server has already closed
and forgotten, for the coverage tests. For each of PORTS of TARGET, N
connections, each fetching a page; then, in turn:
- `fin`: reads the answer and the server's FIN, waits WAIT seconds (the
  server's FIN_WAIT2 ends meanwhile, with tcp_fin_timeout shorter than
  WAIT), then closes: its FIN reaches a connection the server no longer has;
- `rst`: the same, but aborts (SO_LINGER 0): an RST for a forgotten
  connection;
- `early`: closes right after sending the request, without reading: the
  server's answer reaches a closed socket, which answers with RSTs.
Prints `closed N late`.

usage: late_close.py TARGET PORTS N WAIT
"""

import socket
import struct
import sys
import time

target, ports = sys.argv[1], [int(p) for p in sys.argv[2].split(",")]
n, wait = int(sys.argv[3]), float(sys.argv[4])
REQUEST = b"GET / HTTP/1.1\r\nHost: web\r\n\r\n"
held = []
count = 0
for port in ports:
    for i in range(n):
        s = socket.create_connection((target, port), timeout=5)
        s.sendall(REQUEST)
        how = ("fin", "rst", "early")[i % 3]
        if how == "early":
            s.close()
            count += 1
            continue
        while s.recv(4096):
            pass
        held.append((s, how))
time.sleep(wait)
for s, how in held:
    if how == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    count += 1
time.sleep(0.5)
print(f"closed {count} late", flush=True)
