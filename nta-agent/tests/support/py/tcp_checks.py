"""A monitoring host's checks, for the coverage tests: for each of HOSTS
(comma-separated), connect to each of PORTS, send a request, read the whole
answer, close; the hosts spread evenly over SECS seconds, as a scheduler
spreads its checks. Prints `checks ok N of M`; fails unless all answered.

usage: tcp_checks.py HOSTS PORTS SECS
"""

import socket
import sys
import time

hosts, ports = sys.argv[1].split(","), [int(p) for p in sys.argv[2].split(",")]
secs = float(sys.argv[3])
ok = total = 0
t0 = time.monotonic()
for i, host in enumerate(hosts):
    time.sleep(max(0.0, t0 + i * secs / len(hosts) - time.monotonic()))
    for port in ports:
        total += 1
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
            ok += b"200 OK" in answer
        except OSError as e:
            print(f"{host}:{port}: {e}", flush=True)
print(f"checks ok {ok} of {total}", flush=True)
sys.exit(0 if ok == total else 1)
