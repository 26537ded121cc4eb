"""Fixtures for the Vobiz SDK suite: one trunkline server per test session, and tenants on it.
The process contract with the binary (``$TRUNKLINE_BIN``, what its stderr says, the CLI) is
``tests/trunkline_process.py``'s.

Run (from the repository root):
    cargo build -p trunkline
    python3 -m venv /tmp/trunkline-sdk-venv
    /tmp/trunkline-sdk-venv/bin/pip install -r tests/sdk/requirements.txt
    TRUNKLINE_BIN=$PWD/target/debug/trunkline /tmp/trunkline-sdk-venv/bin/pytest tests/sdk -v
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Callable, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from trunkline_process import (  # noqa: E402
    Tenant,
    TrunklineServer,
    attach_stderr,
    binary_from_env,
)

# Set while the session server runs, so failing tests can show its recent stderr.
_ACTIVE_SERVER: Optional[TrunklineServer] = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    attach_stderr(report, _ACTIVE_SERVER)
    return report


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def trunkline_bin() -> Path:
    return binary_from_env()


@pytest.fixture(scope="session")
def trunkline_server(trunkline_bin: Path, tmp_path_factory: pytest.TempPathFactory):
    """The session's server, on a fresh, empty data directory."""
    global _ACTIVE_SERVER
    data_dir = tmp_path_factory.mktemp("trunkline-data")
    server = TrunklineServer(trunkline_bin, data_dir)
    server.start()
    _ACTIVE_SERVER = server
    try:
        yield server
    finally:
        _ACTIVE_SERVER = None
        server.stop()


@pytest.fixture(scope="session")
def default_tenant(trunkline_server: TrunklineServer) -> Tenant:
    """The tenant the server created on first start (credentials from its stderr)."""
    assert trunkline_server.default_tenant is not None
    return trunkline_server.default_tenant


@pytest.fixture(scope="session")
def tenant_factory(trunkline_server: TrunklineServer) -> Callable[[str], Tenant]:
    """Creates a new tenant through the CLI; the name gets a random suffix."""

    def create(prefix: str = "sdk") -> Tenant:
        return trunkline_server.create_tenant(f"{prefix}-{uuid.uuid4().hex[:10]}")

    return create


@pytest.fixture(scope="session")
def other_tenant(tenant_factory: Callable[[str], Tenant], default_tenant: Tenant) -> Tenant:
    """A second, long-lived tenant, distinct from the default one."""
    tenant = tenant_factory("sdk-other")
    assert tenant.account_id != default_tenant.account_id
    assert tenant.api_key != default_tenant.api_key
    return tenant


@pytest.fixture
def fresh_tenant(tenant_factory: Callable[[str], Tenant]) -> Tenant:
    """A brand-new tenant with no credentials, for tests that count or order a whole list."""
    return tenant_factory("sdk-fresh")
