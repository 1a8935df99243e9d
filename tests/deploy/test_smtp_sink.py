"""The local SMTP sink keeps every message byte for byte, with its envelope, in arrival order."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from deploy.local.probes import free_ports, port_accepts
from deploy.local.smtp_sink import running_sink, store_message
from deploy.local.stack import ROOT


def _message(subject: str, body: str = "Hello\n") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "helpdesk@example.test"
    message["To"] = "customer@example.test"
    message["Subject"] = subject
    message.set_content(body)
    return message


def test_in_process_sink_stores_raw_messages_and_envelopes(tmp_path: Path) -> None:
    mail_dir = tmp_path / "mail"
    with running_sink(mail_dir) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
            client.send_message(
                _message("[TKT-1] first"), to_addrs=["customer@example.test", "bcc@example.test"]
            )
            client.send_message(_message("[TKT-2] second ünïcode", body="Grüße\n"))
        messages = sink.messages()
    assert [m["Subject"] for m in messages] == ["[TKT-1] first", "[TKT-2] second ünïcode"]
    eml_files = sorted(mail_dir.glob("*.eml"))
    assert len(eml_files) == 2
    assert not list(mail_dir.glob(".*.tmp")), "temp files must be renamed away"
    envelope = json.loads(eml_files[0].with_suffix(".json").read_text())
    assert envelope["mail_from"] == "helpdesk@example.test"
    assert envelope["rcpt_tos"] == ["customer@example.test", "bcc@example.test"]
    assert b"Subject: [TKT-1] first" in eml_files[0].read_bytes()


def test_store_message_keeps_bytes_exactly_and_names_sort_by_time(tmp_path: Path) -> None:
    raw = b"Subject: x\r\nX-Odd: \xff\xfe\r\n\r\nbody\r\n"
    paths = [store_message(tmp_path, raw, {"n": n}) for n in range(3)]
    assert paths == sorted(paths)
    assert all(path.read_bytes() == raw for path in paths)


def test_cli_sink_runs_as_a_process_and_stops_on_sigterm(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    command = [sys.executable, "-m", "deploy.local.smtp_sink", "--port", str(port), "--dir", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not port_accepts(port):
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline, "sink did not listen within 15 s"
            time.sleep(0.05)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(_message("via cli"))
        assert len(list(tmp_path.glob("*.eml"))) == 1
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert process.returncode == 0, output
