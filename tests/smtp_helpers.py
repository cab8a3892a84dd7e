"""A real SMTP server for the tests (aiosmtpd) that requires STARTTLS and a login, and keeps
every message it receives (no test logic here)."""

from __future__ import annotations

import email
import shutil
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

USER, PASSWORD = "radio-mailer", "smtp-test-password"


@dataclass
class Mailbox:
    """What the server received."""

    messages: list = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        msg = email.message_from_bytes(envelope.content)
        self.messages.append({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                              "subject": msg["Subject"], "body": msg.get_payload(),
                              "tls": session.ssl is not None})
        return "250 OK"

    def subjects(self) -> list[str]:
        return [m["subject"] for m in self.messages]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key (openssl)."""
    cert, key = folder / "smtp.crt", folder / "smtp.key"
    subprocess.run([shutil.which("openssl") or "openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def start(folder: Path, port: int, exclude_auth: tuple[str, ...] = ()):
    """(controller, mailbox, environment for lifecycle.notify) of a STARTTLS-only server;
    ``exclude_auth``: login mechanisms it does not offer (it offers LOGIN and PLAIN)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed(folder)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(), PASSWORD.encode())
        return AuthResult(success=ok, handled=False)

    box = Mailbox()
    controller = Controller(box, hostname="localhost", port=port, tls_context=ctx,
                            require_starttls=True, authenticator=authenticate,
                            auth_require_tls=True,
                            auth_exclude_mechanism=list(exclude_auth))
    controller.start()
    env = {"RADIO_SMTP_HOST": "localhost", "RADIO_SMTP_PORT": str(port),
           "RADIO_SMTP_USER": USER, "RADIO_SMTP_PASSWORD": PASSWORD,
           "RADIO_SMTP_FROM": "radio@hospital.test", "RADIO_ALERT_TO": "ops@hospital.test",
           "RADIO_SMTP_CAFILE": str(cert)}
    return controller, box, env
