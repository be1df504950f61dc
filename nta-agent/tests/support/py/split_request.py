"""Sends one HTTP request in two TCP segments, split inside a header, with
a pause between them so that they leave as two segments; prints the status
line of the answer.

usage: split_request.py ADDR PORT LOCAL_PORT FIRST SECOND
(FIRST and SECOND are the two parts; \\r\\n in them is sent as CRLF)
"""

import socket
import sys
import time

addr, port, local_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
parts = [p.replace("\\r\\n", "\r\n").encode() for p in sys.argv[4:6]]
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.settimeout(5)
s.bind(("", local_port))
s.connect((addr, port))
s.sendall(parts[0])
time.sleep(0.3)
s.sendall(parts[1])
answer = b""
while b"\r\n" not in answer:
    chunk = s.recv(4096)
    if not chunk:
        break
    answer += chunk
print(answer.split(b"\r\n", 1)[0].decode(errors="replace"), flush=True)
s.close()
