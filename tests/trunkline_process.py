"""The process contract with the trunkline binary, shared by the Python suites (tests/sdk,
tests/console); nothing suite-specific:

* ``$TRUNKLINE_BIN`` names the binary (required; see ``binary_from_env``).
* ``$TRUNKLINE_BIN --data-dir DIR serve --listen 127.0.0.1:0`` with ``TRUNKLINE_LOG=info``
  starts the server. Its stderr carries a line containing
  ``listening on http://127.0.0.1:PORT``, one ``sip listening on ADDRESS`` while a SIP node
  runs, and, on an empty database, a line
  ``default tenant: account_id=MA_XXXXXXXXXX api_key=KEY``. The first and the last are awaited
  (30 s limit), and stderr is drained for the rest of the run so the pipe never fills.
* ``$TRUNKLINE_BIN --data-dir DIR tenant create NAME --json`` (run while the server is up)
  prints ``{"account_id": "MA_...", "api_key": "..."}`` on stdout.
* SIGTERM stops the server; it must exit within 15 s.

The suites' conftest files put this directory on ``sys.path`` and import from here.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
CLI_TIMEOUT_S = 30.0
STDERR_TAIL_LINES = 60

# tracing-subscriber is built with the "ansi" feature; strip colour codes before matching.
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_LISTEN_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
_TENANT_RE = re.compile(
    r"default tenant:?\s+account_id=\"?(MA_[A-Z0-9]{10})\"?\s+api_key=\"?([^\s\"]+)\"?"
)
_ACCOUNT_ID_RE = re.compile(r"^MA_[A-Z0-9]{10}$")
_SIP_RE = re.compile(r"sip listening on (\S+)")


@dataclasses.dataclass(frozen=True)
class Tenant:
    """An account on the server and the API key that authenticates as it."""

    account_id: str
    api_key: str
    name: str = "default"


def _normalise_log_line(line: str) -> str:
    """Plain text of one stderr line: ANSI codes stripped; a JSON log line flattened to
    ``message key=value ...`` so the same regexes match whichever formatter is in use."""
    text = _ANSI_RE.sub("", line)
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            record = json.loads(stripped)
        except ValueError:
            return text
        if isinstance(record, dict):
            fields = record.get("fields", record)
            if isinstance(fields, dict):
                parts = [str(fields.get("message", ""))]
                parts += [f"{k}={v}" for k, v in fields.items() if k != "message"]
                return " ".join(parts)
    return text


class TrunklineServer:
    """A running ``trunkline serve`` process with its stderr pumped by a background thread."""

    def __init__(self, binary: Path, data_dir: Path, extra_env: Optional[dict[str, str]] = None):
        self.binary = binary
        self.data_dir = data_dir
        self.extra_env = dict(extra_env or {})
        self.port: Optional[int] = None
        self.sip_address: Optional[str] = None
        self.default_tenant: Optional[Tenant] = None
        self._lines: collections.deque[str] = collections.deque(maxlen=20_000)
        self._cond = threading.Condition()
        self._eof = False
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._reader: Optional[threading.Thread] = None

    # -- process environment -------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["TRUNKLINE_LOG"] = "info"
        env["TRUNKLINE_SIP_LISTEN"] = "127.0.0.1:0"
        env["NO_COLOR"] = "1"
        env.update(self.extra_env)
        return env

    @property
    def base_url(self) -> str:
        assert self.port is not None, "server not started"
        return f"http://127.0.0.1:{self.port}"

    # -- stderr --------------------------------------------------------------------------

    def stderr_text(self, tail: Optional[int] = None) -> str:
        with self._cond:
            lines = list(self._lines)
        if tail is not None:
            lines = lines[-tail:]
        return "\n".join(_ANSI_RE.sub("", l) for l in lines) if lines else "<no stderr output>"

    def _pump_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in iter(self._proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                self._lines.append(line)
                self._scan(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _scan(self, line: str) -> None:
        text = _normalise_log_line(line)
        if self.port is None:
            m = _LISTEN_RE.search(text)
            if m:
                self.port = int(m.group(1))
        if self.sip_address is None:
            m = _SIP_RE.search(text)
            if m:
                self.sip_address = m.group(1)
        if self.default_tenant is None:
            m = _TENANT_RE.search(text)
            if m:
                self.default_tenant = Tenant(account_id=m.group(1), api_key=m.group(2))

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, listen: str = "127.0.0.1:0") -> None:
        cmd = [
            str(self.binary),
            "--data-dir",
            str(self.data_dir),
            "serve",
            "--listen",
            listen,
        ]
        self._proc = subprocess.Popen(
            cmd,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(
            target=self._pump_stderr, name="trunkline-stderr", daemon=True
        )
        self._reader.start()

        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with self._cond:
            while self.port is None or self.default_tenant is None:
                if self._eof:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            port, tenant, eof = self.port, self.default_tenant, self._eof

        if port is not None and tenant is not None:
            return

        if eof:
            try:
                rc = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                rc = None
            why = f"trunkline exited (status {rc}) before it was ready"
        else:
            why = f"trunkline was not ready within {STARTUP_TIMEOUT_S:.0f} s"
        missing = []
        if port is None:
            missing.append("'listening on http://127.0.0.1:PORT'")
        if tenant is None:
            missing.append(
                "'default tenant: account_id=MA_XXXXXXXXXX api_key=KEY' "
                "(expected on first start with an empty --data-dir)"
            )
        self._kill()
        pytest.fail(
            f"{why}; never saw {' and '.join(missing)} on stderr.\n"
            f"command: {' '.join(cmd)}\n"
            f"--- captured stderr ---\n{self.stderr_text()}",
            pytrace=False,
        )

    def restart(self) -> None:
        """Stops the server (SIGTERM) and starts it again on the same data directory and HTTP
        port; the default tenant stays what the first start printed."""
        port = self.port
        self.stop()
        with self._cond:
            self.port = None
            self.sip_address = None
            self._eof = False
        self.start(listen=f"127.0.0.1:{port}")

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def stop(self) -> None:
        """SIGTERM and wait. Fails if the server died during the run or ignores SIGTERM."""
        assert self._proc is not None
        died_early = self._proc.poll()
        if died_early is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
                ignored_sigterm = False
            except subprocess.TimeoutExpired:
                ignored_sigterm = True
            if ignored_sigterm:
                self._kill()
                pytest.fail(
                    f"trunkline did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM.\n"
                    f"--- stderr (tail) ---\n{self.stderr_text(STDERR_TAIL_LINES)}",
                    pytrace=False,
                )
        if self._reader is not None:
            self._reader.join(timeout=5)
        if died_early is not None:
            pytest.fail(
                f"trunkline exited on its own (status {died_early}) while tests were running.\n"
                f"--- stderr (tail) ---\n{self.stderr_text(STDERR_TAIL_LINES)}",
                pytrace=False,
            )

    # -- CLI -----------------------------------------------------------------------------

    def create_tenant(self, name: str) -> Tenant:
        """``trunkline --data-dir DIR tenant create NAME --json`` against the live data dir."""
        cmd = [
            str(self.binary),
            "--data-dir",
            str(self.data_dir),
            "tenant",
            "create",
            name,
            "--json",
        ]
        try:
            proc = subprocess.run(
                cmd,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"`{' '.join(cmd)}` did not finish within {CLI_TIMEOUT_S:.0f} s\n"
                f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}",
                pytrace=False,
            )
        detail = (
            f"command: {' '.join(cmd)}\nstatus: {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
        if proc.returncode != 0:
            pytest.fail(f"tenant create failed\n{detail}", pytrace=False)
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(
                f"tenant create --json did not print a single JSON object on stdout\n{detail}",
                pytrace=False,
            )
        if not (
            isinstance(data, dict)
            and isinstance(data.get("account_id"), str)
            and _ACCOUNT_ID_RE.match(data["account_id"])
            and isinstance(data.get("api_key"), str)
            and data["api_key"]
        ):
            pytest.fail(
                "tenant create --json printed JSON without a well-formed "
                f"account_id (MA_ + 10 of [A-Z0-9]) and a non-empty api_key\n{detail}",
                pytrace=False,
            )
        return Tenant(account_id=data["account_id"], api_key=data["api_key"], name=name)


def binary_from_env() -> Path:
    """The binary ``$TRUNKLINE_BIN`` names; the test fails with how to build it otherwise."""
    value = os.environ.get("TRUNKLINE_BIN")
    if not value:
        pytest.fail(
            "TRUNKLINE_BIN is not set. Build the server and point it at the binary, e.g.\n"
            "  cargo build -p trunkline && "
            "TRUNKLINE_BIN=$PWD/target/debug/trunkline pytest tests/sdk",
            pytrace=False,
        )
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"TRUNKLINE_BIN={value!r} does not exist or is not a file", pytrace=False)
    if not os.access(path, os.X_OK):
        pytest.fail(f"TRUNKLINE_BIN={value!r} is not executable", pytrace=False)
    return path.resolve()


def attach_stderr(report, server: Optional[TrunklineServer]) -> None:
    """Adds the recent stderr of ``server`` (the one a suite is running, if any) to a failed
    test's report; for each suite's ``pytest_runtest_makereport`` hook."""
    if report.failed and server is not None:
        report.sections.append(
            (
                f"trunkline stderr (last {STDERR_TAIL_LINES} lines)",
                server.stderr_text(STDERR_TAIL_LINES),
            )
        )
