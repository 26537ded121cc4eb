"""What the console test talks to besides the browser: the HTTP API as one tenant (``Api``),
SIPp as a registrar answering REGISTER with a fixed status (``Registrar``), and sipsak as a
device registering to trunkline (``sipsak_register``). Each knows it is ready by an answer,
never by a pause: SIPp once it answers an OPTIONS, sipsak once it exits.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from trunkline_process import Tenant

SIPSAK_TIMEOUT_S = 40.0


def free_udp_port() -> int:
    """A loopback UDP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the HTTP API, in each dialect's auth ----------------------------------------------------


class Api:
    """Calls the server's API as one tenant."""

    def __init__(self, base_url: str, tenant: Tenant):
        self.base_url = base_url
        self.tenant = tenant

    def headers(self, dialect: str) -> dict[str, str]:
        key = self.tenant.api_key
        return {
            "ultravox": {"X-API-Key": key},
            "dasha": {"Authorization": f"Bearer {key}"},
            "vobiz": {"X-Auth-ID": self.tenant.account_id, "X-Auth-Token": key},
        }[dialect]

    def call(self, method: str, path: str, dialect: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=self.headers(dialect)
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read()
                return response.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def create(self, path: str, dialect: str, body) -> dict:
        status, created = self.call("POST", path, dialect, body)
        assert status == 201, f"POST {path}: {status} {created}"
        return created


# -- SIP peers -------------------------------------------------------------------------------

_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="registrar answering {code}">
  <recv request="REGISTER" />
  <send>
    <![CDATA[

      SIP/2.0 {code} {reason}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=3600
      Expires: 3600
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


class Registrar:
    """SIPp as a registrar answering every REGISTER with one status (200 grants the Contact
    for an hour). ``-aa`` makes it answer OPTIONS too, which is how ``start`` knows it
    listens."""

    def __init__(self, workdir: Path, code: int, reason: str):
        self.port = free_udp_port()
        self.address = f"127.0.0.1:{self.port}"
        scenario = workdir / f"registrar-{code}.xml"
        scenario.write_text(_SCENARIO.format(code=code, reason=reason))
        self.log = open(workdir / f"sipp-{code}.log", "wb")
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(self.port),
             "-t", "u1", "-aa", "-nostdin"],
            cwd=workdir, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.await_listening()

    def await_listening(self, timeout_s: float = 10.0) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.25)
            local = sock.getsockname()[1]
            for attempt in range(int(timeout_s / 0.25)):
                assert self.proc.poll() is None, f"SIPp exited: {self.proc.returncode}"
                options = (
                    f"OPTIONS sip:probe@{self.address} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-probe{attempt}\r\n"
                    "From: <sip:probe@127.0.0.1>;tag=probe\r\n"
                    f"To: <sip:probe@{self.address}>\r\n"
                    f"Call-ID: probe-{uuid.uuid4().hex}\r\n"
                    "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                )
                sock.sendto(options.encode(), ("127.0.0.1", self.port))
                try:
                    reply, _ = sock.recvfrom(4096)
                except socket.timeout:
                    continue  # the receive timeout paced the retry
                if reply.startswith(b"SIP/2.0 200"):
                    return
        pytest.fail(f"SIPp on {self.address} did not answer an OPTIONS within {timeout_s} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def sipsak_register(registrar: str, realm: str, user: str, password: str) -> str:
    """One sipsak registration of ``user`` (digest, MD5) to trunkline; returns the Contact
    it registered. sipsak exits 0 once the REGISTER with credentials got a 200."""
    contact = f"sip:{user}@127.0.0.1:{free_udp_port()}"
    command = [
        "sipsak", "-p", registrar, "-E", "udp", "-U", "-s", f"sip:{user}@{realm}",
        "-a", password, "-u", user, "-x", "300", "-C", contact, "-i", "-vvv",
    ]
    run = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=SIPSAK_TIMEOUT_S)
    assert run.returncode == 0, f"{' '.join(command)}\n{run.stdout}\n{run.stderr}"
    return contact
