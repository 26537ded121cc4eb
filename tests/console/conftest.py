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

import shutil
import sys
from pathlib import Path
from typing import Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from trunkline_process import (  # noqa: E402
    TrunklineServer,
    attach_stderr,
    binary_from_env,
)

from peers import Api, Registrar  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

_ACTIVE_SERVER: Optional[TrunklineServer] = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    attach_stderr(report, _ACTIVE_SERVER)
    return report


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
