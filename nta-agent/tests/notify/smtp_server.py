#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for nta's email channel tests.

Listens on 127.0.0.1 on a free port and prints `ready PORT`; then prints
one JSON line per message it accepts: the envelope, the raw message
(base64), whether STARTTLS was on and which login was used. It exits when
its standard input closes, so it never outlives the test that started it,
even one that dies without cleaning up.

Options: --cert/--key turn on STARTTLS, required before MAIL;
--user/--password require that login (PLAIN or LOGIN, only after TLS).
"""

import argparse
import asyncio
import base64
import json
import logging
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    """Prints every accepted message as one JSON line."""

    async def handle_DATA(self, server, session, envelope):
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": base64.b64encode(envelope.original_content).decode("ascii"),
            "tls": session.ssl is not None,
            "login": login,
        }
        print(json.dumps(record), flush=True)
        return "250 2.0.0 OK: queued"


class Authenticator:
    """Accepts one user and password, nothing else."""

    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        ):
            return AuthResult(success=True, auth_data=auth_data)
        # aiosmtpd then answers 535 5.7.8, as real servers do.
        return AuthResult(success=False, handled=False)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    tls_context = None
    if args.cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.cert, args.key)
    authenticator = None
    if args.user is not None:
        authenticator = Authenticator(args.user, args.password or "")

    loop = asyncio.get_running_loop()

    def session():
        return SMTP(
            Recorder(),
            hostname="nta-test-smtp",
            tls_context=tls_context,
            require_starttls=tls_context is not None,
            authenticator=authenticator,
            auth_required=authenticator is not None,
            auth_require_tls=True,
            loop=loop,
        )

    server = await loop.create_server(session, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    # Until the test closes our stdin (or its end of the pipe goes away).
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


if __name__ == "__main__":
    # aiosmtpd warns about its own deprecated login_data on every AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(main())
