"""lifecycle/notify.py against a real SMTP server (aiosmtpd) that requires STARTTLS."""

from __future__ import annotations

import helpers
import smtp_helpers

from lifecycle import notify


def test_a_message_arrives_over_starttls_with_login(smtp):
    assert notify.send("promotion refused", "nih-adult-normal: worse")
    (msg,) = smtp.messages
    assert msg["subject"] == "[Radio] promotion refused" and msg["tls"]
    assert msg["to"] == ["ops@hospital.test"] and msg["from"] == "radio@hospital.test"
    assert "nih-adult-normal: worse" in msg["body"]


def test_a_wrong_password_or_an_untrusted_server_sends_nothing_and_says_so(smtp, monkeypatch,
                                                                          caplog):
    monkeypatch.setenv("RADIO_SMTP_PASSWORD", "wrong")
    assert not notify.send("x", "y")
    monkeypatch.setenv("RADIO_SMTP_PASSWORD", smtp_helpers.PASSWORD)
    monkeypatch.delenv("RADIO_SMTP_CAFILE")  # the self-signed certificate is not trusted
    assert not notify.send("x", "y")
    assert smtp.messages == [] and "not sent" in caplog.text


def test_a_server_without_starttls_is_refused(tmp_path, monkeypatch, caplog):
    """Plain SMTP would send the password in clear: refused, never downgraded."""
    from aiosmtpd.controller import Controller

    box = smtp_helpers.Mailbox()
    port = helpers.free_port()
    controller = Controller(box, hostname="localhost", port=port)
    controller.start()
    try:
        s = notify.Smtp("localhost", port, "a@b", ("c@d",), "u", "p")
        assert not notify.send("x", "y", s)
        assert box.messages == [] and "STARTTLS" in caplog.text
    finally:
        controller.stop()


def test_unconfigured_email_is_a_log_line(monkeypatch, caplog):
    monkeypatch.delenv("RADIO_SMTP_HOST", raising=False)
    assert notify.smtp_settings({"RADIO_ALERT_TO": "a@b"}) is None
    assert not notify.send("job failed", "z", None)
    assert "e-mail not configured" in caplog.text
