#!/usr/bin/env python3
"""A real SMTP server for Pregonero's tests, on loopback, built on aiosmtpd.

It writes every mail it accepts as one JSON line (envelope sender and recipients, the decoded
subject, Message-ID, From and text and HTML parts, whether the session was encrypted, who signed
in) to the file given with --out, and prints "ready" once it listens. Options make it behave like the servers organisations run:

  --auth USER:PASSWORD   offer AUTH (PLAIN, LOGIN) and require it before MAIL FROM
  --starttls CERT KEY    offer STARTTLS with this certificate, and require it
  --tls CERT KEY         speak TLS from the first byte (SMTPS)
  --relay-domain DOMAIN  accept recipients of this domain only; others get
                         "550 5.7.1 Relaying denied" (may be given more than once)

It runs until it is killed or its standard input closes.
"""

import argparse
import email
import email.policy
import json
import ssl
import sys
import threading

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:
    sys.stderr.write("aiosmtpd is missing: python3 -m pip install aiosmtpd\n")
    sys.exit(3)


class Recorder:
    def __init__(self, out, relay_domains):
        self.out = out
        self.relay_domains = [d.lower() for d in relay_domains]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        domain = address.rsplit("@", 1)[-1].lower()
        if self.relay_domains and domain not in self.relay_domains:
            return "550 5.7.1 Relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        user = session.auth_data.login.decode() if session.authenticated else None
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts.setdefault(part.get_content_subtype(), part.get_content())
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "message_id": str(message["message-id"]),
            "header_from": str(message["from"]),
            "text": parts.get("plain"),
            "html": parts.get("html"),
            # session.ssl is set by STARTTLS; a server that speaks TLS from the start has it
            # on its transport.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("sslcontext") is not None,
            "user": user,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 Message accepted for delivery"


def authenticator(expected):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == expected[0]
            and auth_data.password.decode() == expected[1]
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


def context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--auth")
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--relay-domain", action="append", default=[])
    args = parser.parse_args()

    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)
        kwargs.update(
            authenticator=authenticator((user, password)),
            auth_required=True,
            # Over plain text only when no TLS is configured at all.
            auth_require_tls=bool(args.starttls),
        )
    if args.starttls:
        kwargs.update(tls_context=context(*args.starttls), require_starttls=True)
    if args.tls:
        kwargs.update(ssl_context=context(*args.tls))

    controller = Controller(
        Recorder(args.out, args.relay_domain),
        hostname="127.0.0.1",
        port=args.port,
        server_hostname="localhost",
        **kwargs,
    )
    controller.start()
    print("ready", flush=True)
    done = threading.Event()

    def wait_for_stdin():
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_stdin, daemon=True).start()
    try:
        done.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
