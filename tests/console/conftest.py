"""Fixtures for the web console's browser test: the real trunkline binary (engine and
registrar on), real SIP peers (SIPp as the registrars the outbound registrations register
with, sipsak as a device registering to trunkline), and Debian's headless Chromium driven by
Selenium through Debian's chromedriver. The process contract with the binary is
``tests/trunkline_process.py``'s.

Nothing here sleeps to let time pass: SIPp is known to listen once it answers an OPTIONS,
the server once it printed its address, sipsak once it exited.

Run (from the repository root; scripts/test does this):
    cargo build -p trunkline
    .venv-test/bin/pip install -r tests/console/requirements.txt
    TRUNKLINE_BIN=$PWD/target/debug/trunkline .venv-test/bin/pytest tests/console -v
Needs the Debian packages chromium, chromium-driver, sip-tester (SIPp) and sipsak.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from trunkline_process import (  # noqa: E402
    STDERR_TAIL_LINES,
    Tenant,
    TrunklineServer,
    binary_from_env,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SIPSAK_TIMEOUT_S = 40.0

_ACTIVE_SERVER: Optional[TrunklineServer] = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and _ACTIVE_SERVER is not None:
        report.sections.append(
            (
                f"trunkline stderr (last {STDERR_TAIL_LINES} lines)",
                _ACTIVE_SERVER.stderr_text(STDERR_TAIL_LINES),
            )
        )
    return report


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


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """trunkline with its engine and registrar; devices' digest is MD5 first (sipsak's)."""
    global _ACTIVE_SERVER
    server = TrunklineServer(
        binary_from_env(),
        tmp_path_factory.mktemp("trunkline-data"),
        extra_env={
            "TRUNKLINE_SIP_CHALLENGE_ALGORITHMS": "MD5,SHA-256",
            # SIPp answers no unregister once its call has ended: nothing to wait for at stop.
            "TRUNKLINE_OUTBOUND_UNREGISTER_ON_SHUTDOWN": "false",
        },
    )
    server.start()
    assert server.sip_address, "no `sip listening on` line"
    _ACTIVE_SERVER = server
    try:
        yield server
    finally:
        _ACTIVE_SERVER = None
        server.stop()


@pytest.fixture(scope="module")
def api(server: TrunklineServer) -> Api:
    assert server.default_tenant is not None
    return Api(server.base_url, server.default_tenant)


@pytest.fixture(scope="module")
def registrars(tmp_path_factory: pytest.TempPathFactory):
    """Two registrars: one that accepts, one that answers 403."""
    workdir = tmp_path_factory.mktemp("sipp")
    accepting = Registrar(workdir, 200, "OK")
    refusing = Registrar(workdir, 403, "Forbidden")
    try:
        yield accepting, refusing
    finally:
        accepting.stop()
        refusing.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium at a desktop width, its console log kept for the test to read."""
    for needed in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(needed):
            pytest.fail(f"{needed} is missing: install Debian's chromium and chromium-driver",
                        pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
