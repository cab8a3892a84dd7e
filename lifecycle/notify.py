"""E-mail notifications: failed healthcheck, refused or completed promotion, drift, finished
training. SMTP settings come from the environment (docs/lifecycle.md):

``RADIO_SMTP_HOST`` (unset: no e-mail, a log line says so), ``RADIO_SMTP_PORT`` [587],
``RADIO_SMTP_USER`` / ``RADIO_SMTP_PASSWORD`` (login after STARTTLS, when set),
``RADIO_SMTP_FROM`` [radio@localhost], ``RADIO_ALERT_TO`` (comma-separated recipients),
``RADIO_SMTP_STARTTLS`` [true]: STARTTLS is required, never skipped silently: a server that
does not offer it is an error, so a password or a report never crosses the network in
clear; ``RADIO_SMTP_CAFILE``: a CA bundle to verify the server with (default: the system's).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

log = logging.getLogger("radio.lifecycle.notify")


@dataclass(frozen=True)
class Smtp:
    """Where and how to send."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str = ""
    password: str = ""
    starttls: bool = True
    cafile: str = ""


def smtp_settings(environ: Mapping[str, str] | None = None) -> Smtp | None:
    """The SMTP settings, or None when e-mail is not configured."""
    env = os.environ if environ is None else environ
    host = env.get("RADIO_SMTP_HOST", "")
    to = tuple(a.strip() for a in env.get("RADIO_ALERT_TO", "").split(",") if a.strip())
    if not host or not to:
        return None
    return Smtp(host, int(env.get("RADIO_SMTP_PORT", "587")),
                env.get("RADIO_SMTP_FROM", "radio@localhost"), to,
                env.get("RADIO_SMTP_USER", ""), env.get("RADIO_SMTP_PASSWORD", ""),
                env.get("RADIO_SMTP_STARTTLS", "true").lower() not in ("0", "false", "no"),
                env.get("RADIO_SMTP_CAFILE", ""))


def send(subject: str, body: str, smtp: Smtp | None = None, timeout_s: float = 30) -> bool:
    """Send one message; False (logged) when e-mail is not configured or sending failed.

    A notification must never break the job that sends it: the job's own result stands
    and the failure is logged with the reason.
    """
    smtp = smtp or smtp_settings()
    if smtp is None:
        log.warning("e-mail not configured (RADIO_SMTP_HOST, RADIO_ALERT_TO): %s", subject)
        return False
    msg = EmailMessage()
    msg["Subject"] = f"[Radio] {subject}"
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(smtp.recipients)
    msg.set_content(body)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout_s) as server:
            server.ehlo()
            if smtp.starttls:
                context = ssl.create_default_context(cafile=smtp.cafile or None)
                server.starttls(context=context)
                server.ehlo()
            if smtp.user:
                server.login(smtp.user, smtp.password)
            server.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.error("e-mail %r not sent: %s", subject, exc)
        return False
    return True
