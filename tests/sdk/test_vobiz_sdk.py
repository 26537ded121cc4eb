"""Vobiz dialect compatibility: the official Vobiz Python SDK (vobiz-python 0.1.1) driving trunkline.

This file owns the SDK side: it points ``vobiz.resources.credentials.VOBIZ_API_V1`` at the
session's server (monkeypatch; the SDK reads that module global at call time), builds
``vobiz.RestClient`` instances for tenants from conftest.py, and checks the inbound-credential
endpoints (create / list / get / update / delete) plus the error mapping to vobiz.exceptions.

Every HTTP exchange made through an SDK session is recorded by a requests response hook; after
each test the recording is checked for wire-level invariants the SDK cannot see: no plaintext
password ever appears in a response, every ``password`` field is ``"<redacted>"``, errors use
the ``{"api_id", "error"}`` envelope, and 204 responses have an empty body.

Run (from the repository root):
    cargo build -p trunkline
    python3 -m venv /tmp/trunkline-sdk-venv
    /tmp/trunkline-sdk-venv/bin/pip install -r tests/sdk/requirements.txt
    TRUNKLINE_BIN=$PWD/target/debug/trunkline /tmp/trunkline-sdk-venv/bin/pytest tests/sdk -v
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any, Callable, Optional

import pytest
import vobiz
from vobiz.exceptions import (
    AuthenticationError,
    ForbiddenError,
    InvalidRequestError,
    ResourceNotFoundError,
    ValidationError,
)

if TYPE_CHECKING:  # only for annotations; conftest is not imported at run time
    from conftest import Tenant

CREDENTIALS_MODULE = importlib.import_module("vobiz.resources.credentials")

REDACTED = "<redacted>"
CREDENTIAL_FIELDS = {
    "id",
    "account_id",
    "username",
    "password",
    "realm",
    "enabled",
    "description",
    "created_at",
    "updated_at",
}
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
SDK_TIMEOUT_S = 15

# Every plaintext password this module sends, so the wire check can look for all of them.
PLAINTEXT_PASSWORDS: set[str] = set()


# -- helpers ---------------------------------------------------------------------------------


def new_password(length: int = 20) -> str:
    """A random password of exactly ``length`` chars, remembered for the leak check.

    The ``Pw-`` prefix (capital P) cannot occur in uuids, timestamps or account ids, so even a
    short password is a meaningful substring to search for."""
    password = ("Pw-" + secrets.token_hex(length))[:length]
    assert len(password) == length
    PLAINTEXT_PASSWORDS.add(password)
    return password


def new_username(prefix: str = "sdk") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def fields(obj: Any) -> dict[str, Any]:
    """The JSON object behind an SDK ResponseObject."""
    return dict(vars(obj))


def parse_ts(text: str) -> dt.datetime:
    assert TIMESTAMP_RE.match(text), f"not RFC 3339 UTC with microseconds and 'Z': {text!r}"
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def create_credential(client, *, username: Optional[str] = None, password: Optional[str] = None, **kw):
    return client.credentials.create(
        username or new_username(), password or new_password(), **kw
    )


def assert_credential(
    obj: Any,
    tenant: Tenant,
    *,
    username: str,
    enabled: bool = True,
    description: Optional[str] = None,
) -> dict[str, Any]:
    d = fields(obj)
    assert set(d) == CREDENTIAL_FIELDS, f"unexpected field set: {sorted(d)}"
    assert str(uuid.UUID(d["id"])) == d["id"], f"id is not a canonical uuid: {d['id']!r}"
    assert d["account_id"] == tenant.account_id
    assert d["username"] == username
    assert d["password"] == REDACTED
    assert d["realm"] == f"{tenant.account_id}.sip.localhost"
    assert d["enabled"] is enabled
    assert d["description"] == description
    created, updated = parse_ts(d["created_at"]), parse_ts(d["updated_at"])
    assert updated >= created
    now = dt.datetime.now(dt.timezone.utc)
    assert abs(now - created) < dt.timedelta(minutes=5), f"created_at far from now: {created}"
    return d


def meta_of(listing: Any) -> tuple[int, int, int]:
    meta = listing.meta
    return meta.limit, meta.offset, meta.total


def ids_of(listing: Any) -> list[str]:
    return [o.id for o in listing.objects]


# -- wire recording --------------------------------------------------------------------------


@dataclasses.dataclass
class Exchange:
    method: str
    url: str
    status: int
    content_type: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Wire:
    """Records every response an SDK session receives (requests ``response`` hook)."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.base_url: Optional[str] = None  # set by the api_v1 fixture

    def record(self, response, *args, **kwargs):
        self.exchanges.append(
            Exchange(
                method=response.request.method,
                url=response.url,
                status=response.status_code,
                content_type=response.headers.get("Content-Type", ""),
                text=response.text,
            )
        )
        return response

    @property
    def last(self) -> Exchange:
        assert self.exchanges, "no HTTP exchange recorded"
        return self.exchanges[-1]


def _password_values(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "password":
                yield value
            yield from _password_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _password_values(item)


def wire_violations(wire: Wire) -> list[str]:
    problems = []
    for ex in wire.exchanges:
        where = f"{ex.method} {ex.url} -> {ex.status}"
        if wire.base_url is None or not ex.url.startswith(wire.base_url + "/"):
            problems.append(f"{where}: request left the test server")
        for pw in PLAINTEXT_PASSWORDS:
            if pw in ex.text:
                problems.append(f"{where}: response contains plaintext password {pw!r}: {ex.text}")
        if ex.status == 204:
            if ex.text != "":
                problems.append(f"{where}: 204 with a non-empty body {ex.text!r}")
            continue
        if not ex.content_type.startswith("application/json"):
            problems.append(f"{where}: Content-Type {ex.content_type!r}, body {ex.text!r}")
        try:
            body = ex.json()
        except ValueError:
            problems.append(f"{where}: body is not JSON: {ex.text!r}")
            continue
        for value in _password_values(body):
            if value != REDACTED:
                problems.append(f"{where}: password field is {value!r}, not {REDACTED!r}")
        if ex.status >= 400:
            ok = (
                isinstance(body, dict)
                and set(body) == {"api_id", "error"}
                and isinstance(body["error"], str)
                and body["error"]
            )
            if ok:
                try:
                    uuid.UUID(body["api_id"])
                except (TypeError, ValueError, AttributeError):
                    ok = False
            if not ok:
                problems.append(f"{where}: not an {{api_id: uuid, error: str}} envelope: {ex.text!r}")
    return problems


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def api_v1(trunkline_server, monkeypatch, wire: Wire) -> str:
    """Points the SDK's credentials module at the test server for the duration of a test."""
    url = f"{trunkline_server.base_url}/api/v1"
    monkeypatch.setattr(CREDENTIALS_MODULE, "VOBIZ_API_V1", url)
    wire.base_url = url
    return url


@pytest.fixture(autouse=True)
def wire_invariants(wire: Wire):
    """After each test: nothing recorded on the wire may break the invariants above."""
    yield
    problems = wire_violations(wire)
    assert not problems, "wire invariants violated:\n" + "\n".join(problems)


@pytest.fixture
def make_client(api_v1: str, wire: Wire) -> Callable[..., Any]:
    """Builds an SDK client for a tenant (or explicit auth_id/auth_token), hooked to ``wire``."""
    clients = []

    def make(tenant: Optional[Tenant] = None, *, auth_id: Optional[str] = None, auth_token: Optional[str] = None):
        if tenant is not None:
            auth_id = auth_id or tenant.account_id
            auth_token = auth_token or tenant.api_key
        assert auth_id and auth_token
        client = vobiz.RestClient(auth_id, auth_token, timeout=SDK_TIMEOUT_S)
        # Ignore HTTP(S)_PROXY / .netrc from the environment: the server is on loopback.
        client.session.trust_env = False
        client.session.hooks["response"].append(wire.record)
        assert CREDENTIALS_MODULE.VOBIZ_API_V1 == api_v1
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.session.close()
        client.multipart_session.close()


@pytest.fixture
def client(make_client, default_tenant: Tenant):
    """An SDK client for the server's default tenant."""
    return make_client(default_tenant)


# -- create / get ----------------------------------------------------------------------------


def test_create_returns_full_redacted_object(client, default_tenant, wire):
    username = new_username()
    created = client.credentials.create(username, new_password())

    assert wire.last.method == "POST" and wire.last.status == 201
    assert_credential(created, default_tenant, username=username)


def test_create_with_enabled_false_and_description(client, default_tenant):
    username = new_username()
    created = client.credentials.create(
        username, new_password(), enabled=False, description="front desk phone"
    )
    assert_credential(
        created, default_tenant, username=username, enabled=False, description="front desk phone"
    )


def test_get_returns_what_create_returned(client, default_tenant, wire):
    created = create_credential(client, description="get me")
    fetched = client.credentials.get(created.id)

    assert wire.last.method == "GET" and wire.last.status == 200
    assert fields(fetched) == fields(created)
    assert_credential(fetched, default_tenant, username=created.username, description="get me")


@pytest.mark.parametrize("length", [8, 128])
def test_create_accepts_password_length_bounds(client, default_tenant, length):
    username = new_username()
    created = client.credentials.create(username, new_password(length))
    assert_credential(created, default_tenant, username=username)


@pytest.mark.parametrize("length", [0, 7, 129])
def test_create_rejects_password_length_out_of_range(make_client, fresh_tenant, wire, length):
    c = make_client(fresh_tenant)
    with pytest.raises(ValidationError):
        c.credentials.create(new_username(), new_password(length) if length else "")
    assert wire.last.status == 400
    assert meta_of(c.credentials.list())[2] == 0, "rejected create still stored a credential"


@pytest.mark.parametrize("username", ["a", "A.b-c_9", "u" * 64])
def test_create_accepts_valid_usernames(make_client, fresh_tenant, username):
    c = make_client(fresh_tenant)
    created = c.credentials.create(username, new_password())
    assert_credential(created, fresh_tenant, username=username)


@pytest.mark.parametrize(
    "username",
    ["", "u" * 65, "has space", "at@sign", "colon:name", "slash/name", "ümlaut"],
    ids=["empty", "65-chars", "space", "at-sign", "colon", "slash", "non-ascii"],
)
def test_create_rejects_invalid_usernames(make_client, fresh_tenant, wire, username):
    c = make_client(fresh_tenant)
    with pytest.raises(ValidationError):
        c.credentials.create(username, new_password())
    assert wire.last.status == 400
    assert meta_of(c.credentials.list())[2] == 0, "rejected create still stored a credential"


def test_duplicate_username_is_conflict(client, wire):
    username = new_username()
    first = client.credentials.create(username, new_password())

    with pytest.raises(InvalidRequestError):
        client.credentials.create(username, new_password(), description="second")
    assert wire.last.status == 409
    assert fields(client.credentials.get(first.id)) == fields(first)


def test_same_username_in_two_tenants_is_allowed(make_client, default_tenant, other_tenant):
    username = new_username("shared")
    mine = make_client(default_tenant).credentials.create(username, new_password())
    theirs = make_client(other_tenant).credentials.create(username, new_password())

    assert_credential(mine, default_tenant, username=username)
    assert_credential(theirs, other_tenant, username=username)
    assert mine.id != theirs.id


# -- list ------------------------------------------------------------------------------------


def test_list_empty_account(make_client, fresh_tenant, wire):
    listing = make_client(fresh_tenant).credentials.list()
    assert wire.last.status == 200
    assert meta_of(listing) == (20, 0, 0)
    assert listing.objects == []


def test_list_is_newest_first_with_limit_offset_and_total(make_client, fresh_tenant):
    c = make_client(fresh_tenant)
    created = [create_credential(c, username=f"page_{i}") for i in range(5)]
    newest_first = [x.id for x in reversed(created)]

    full = c.credentials.list()
    assert meta_of(full) == (20, 0, 5)
    assert ids_of(full) == newest_first
    stamps = [parse_ts(o.created_at) for o in full.objects]
    assert stamps == sorted(stamps, reverse=True)
    by_id = {x.id: fields(x) for x in created}
    for obj in full.objects:
        assert fields(obj) == by_id[obj.id]
        assert obj.password == REDACTED

    pages = []
    for offset, expected_len in [(0, 2), (2, 2), (4, 1)]:
        page = c.credentials.list(limit=2, offset=offset)
        assert meta_of(page) == (2, offset, 5)
        assert len(page.objects) == expected_len
        pages += ids_of(page)
    assert pages == newest_first

    for offset in (5, 50):
        beyond = c.credentials.list(limit=2, offset=offset)
        assert meta_of(beyond) == (2, offset, 5)
        assert beyond.objects == []

    only_offset = c.credentials.list(offset=3)
    assert meta_of(only_offset) == (20, 3, 5)
    assert ids_of(only_offset) == newest_first[3:]

    assert ids_of(c.credentials.list(limit=1)) == newest_first[:1]
    assert ids_of(c.credentials.list(limit=100)) == newest_first


def test_list_only_shows_own_tenant(make_client, fresh_tenant, default_tenant):
    create_credential(make_client(default_tenant))
    mine = create_credential(make_client(fresh_tenant))

    listing = make_client(fresh_tenant).credentials.list(limit=100)
    assert meta_of(listing)[2] == 1
    assert ids_of(listing) == [mine.id]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": -1},
        {"offset": -1},
        {"limit": "abc"},
    ],
    ids=["limit=0", "limit=101", "limit=-1", "offset=-1", "limit=abc"],
)
def test_list_rejects_out_of_range_paging(client, wire, params):
    with pytest.raises(ValidationError):
        client.credentials.list(**params)
    assert wire.last.status == 400


# -- update ----------------------------------------------------------------------------------


def assert_only_changed(before: dict, after: dict, changed: set[str]) -> None:
    for key in CREDENTIAL_FIELDS - changed - {"updated_at"}:
        assert after[key] == before[key], f"{key} changed: {before[key]!r} -> {after[key]!r}"
    assert parse_ts(after["updated_at"]) > parse_ts(before["updated_at"]), "updated_at did not advance"


def test_update_description(client, default_tenant, wire):
    created = create_credential(client, description="old")
    updated = client.credentials.update(created.id, description="new description")

    assert wire.last.method == "PUT" and wire.last.status == 200
    assert_credential(updated, default_tenant, username=created.username, description="new description")
    assert_only_changed(fields(created), fields(updated), {"description"})
    assert fields(client.credentials.get(created.id)) == fields(updated)


def test_update_enabled(client):
    created = create_credential(client)
    disabled = client.credentials.update(created.id, enabled=False)
    assert disabled.enabled is False
    assert_only_changed(fields(created), fields(disabled), {"enabled"})
    assert client.credentials.get(created.id).enabled is False

    enabled = client.credentials.update(created.id, enabled=True)
    assert enabled.enabled is True
    assert_only_changed(fields(disabled), fields(enabled), {"enabled"})


def test_update_password_stays_redacted(client):
    created = create_credential(client, description="keep")
    updated = client.credentials.update(created.id, password=new_password())

    assert updated.password == REDACTED
    assert_only_changed(fields(created), fields(updated), set())
    assert fields(client.credentials.get(created.id)) == fields(updated)


def test_update_several_fields_at_once(client, default_tenant):
    created = create_credential(client)
    updated = client.credentials.update(
        created.id, password=new_password(), enabled=False, description="all three"
    )
    assert_credential(
        updated, default_tenant, username=created.username, enabled=False, description="all three"
    )
    assert_only_changed(fields(created), fields(updated), {"enabled", "description"})


def test_update_with_same_username_is_allowed(client):
    created = create_credential(client)
    updated = client.credentials.update(created.id, username=created.username, description="same name")
    assert updated.username == created.username
    assert updated.description == "same name"


def test_update_rejects_username_change(client, wire):
    created = create_credential(client)
    with pytest.raises(ValidationError):
        client.credentials.update(created.id, username=new_username(), description="nope")
    assert wire.last.status == 400
    assert fields(client.credentials.get(created.id)) == fields(created)


@pytest.mark.parametrize("length", [7, 129])
def test_update_rejects_bad_password_length(client, wire, length):
    created = create_credential(client)
    with pytest.raises(ValidationError):
        client.credentials.update(created.id, password=new_password(length))
    assert wire.last.status == 400
    assert fields(client.credentials.get(created.id)) == fields(created)


@pytest.mark.parametrize(
    "params",
    [
        {"realm": "evil.example.com"},
        {"account_id": "MA_ZZZZZZZZZZ"},
        {"id": "00000000-0000-4000-8000-000000000000"},
        {"created_at": "2000-01-01T00:00:00.000000Z"},
    ],
    ids=["realm", "account_id", "id", "created_at"],
)
def test_update_cannot_change_read_only_fields(client, params):
    """Only password/enabled/description are changeable: a read-only field in the body is
    either rejected (400/422) or ignored, never applied."""
    created = create_credential(client)
    try:
        client.credentials.update(created.id, **params)
    except (ValidationError, InvalidRequestError):
        pass
    after = fields(client.credentials.get(created.id))
    for key in params:
        assert after[key] == fields(created)[key], f"PUT changed read-only field {key}"


# -- delete ----------------------------------------------------------------------------------


def test_delete_then_everything_is_not_found(client, wire):
    created = create_credential(client)

    result = client.credentials.delete(created.id)
    assert result is None, "SDK returns None for a 204 with an empty body"
    assert wire.last.method == "DELETE" and wire.last.status == 204

    with pytest.raises(ResourceNotFoundError):
        client.credentials.get(created.id)
    assert wire.last.status == 404
    with pytest.raises(ResourceNotFoundError):
        client.credentials.update(created.id, description="ghost")
    with pytest.raises(ResourceNotFoundError):
        client.credentials.delete(created.id)
    assert created.id not in ids_of(client.credentials.list(limit=100))


# -- not found / tenant isolation ------------------------------------------------------------


def _not_found_shape(ex: Exchange, credential_id: str) -> tuple:
    body = ex.json()
    return (
        ex.status,
        ex.content_type,
        sorted(body),
        body.get("error", "").replace(credential_id, "{id}"),
    )


OPERATIONS = {
    "get": lambda c, cid: c.credentials.get(cid),
    "update": lambda c, cid: c.credentials.update(cid, description="pwned"),
    "delete": lambda c, cid: c.credentials.delete(cid),
}


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_unknown_id_is_not_found(client, wire, op):
    with pytest.raises(ResourceNotFoundError):
        OPERATIONS[op](client, str(uuid.uuid4()))
    assert wire.last.status == 404


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_other_tenants_credential_looks_exactly_like_a_missing_one(
    make_client, default_tenant, other_tenant, wire, op
):
    owner = make_client(other_tenant)
    theirs = create_credential(owner, description="not yours")
    me = make_client(default_tenant)

    with pytest.raises(ResourceNotFoundError) as foreign:
        OPERATIONS[op](me, theirs.id)
    foreign_ex = wire.last

    missing_id = str(uuid.uuid4())
    with pytest.raises(ResourceNotFoundError) as never:
        OPERATIONS[op](me, missing_id)
    never_ex = wire.last

    assert _not_found_shape(foreign_ex, theirs.id) == _not_found_shape(never_ex, missing_id)
    assert str(foreign.value).replace(theirs.id, "{id}") == str(never.value).replace(missing_id, "{id}")
    assert fields(owner.credentials.get(theirs.id)) == fields(theirs), "owner's credential was touched"


# -- authentication / authorisation ----------------------------------------------------------


def test_wrong_token_is_authentication_error(make_client, fresh_tenant, wire):
    good = make_client(fresh_tenant)
    existing = create_credential(good)
    bad = make_client(fresh_tenant, auth_token="not-the-key-" + secrets.token_hex(8))

    with pytest.raises(AuthenticationError):
        bad.credentials.list()
    assert wire.last.status == 401
    with pytest.raises(AuthenticationError):
        bad.credentials.get(existing.id)
    with pytest.raises(AuthenticationError):
        bad.credentials.create(new_username(), new_password())
    with pytest.raises(AuthenticationError):
        bad.credentials.update(existing.id, description="nope")
    with pytest.raises(AuthenticationError):
        bad.credentials.delete(existing.id)

    assert meta_of(good.credentials.list())[2] == 1
    assert fields(good.credentials.get(existing.id)) == fields(existing)


def test_unknown_account_and_key_is_authentication_error(make_client, wire):
    stranger = make_client(auth_id="MA_ZZZZZZZZZZ", auth_token=secrets.token_hex(16))
    with pytest.raises(AuthenticationError):
        stranger.credentials.list()
    assert wire.last.status == 401


def test_missing_token_header_is_authentication_error(make_client, default_tenant, wire):
    c = make_client(default_tenant)
    del c.session.headers["X-Auth-Token"]
    with pytest.raises(AuthenticationError):
        c.credentials.list()
    assert wire.last.status == 401


def test_another_tenants_key_does_not_open_this_account(make_client, fresh_tenant, other_tenant):
    """X-Auth-ID of one account with the API key of another must not be accepted."""
    victim = make_client(fresh_tenant)
    theirs = create_credential(victim)
    mixed = make_client(auth_id=fresh_tenant.account_id, auth_token=other_tenant.api_key)

    with pytest.raises((AuthenticationError, ForbiddenError)):
        mixed.credentials.list()
    with pytest.raises((AuthenticationError, ForbiddenError)):
        mixed.credentials.get(theirs.id)
    with pytest.raises((AuthenticationError, ForbiddenError)):
        mixed.credentials.create(new_username(), new_password())
    assert meta_of(victim.credentials.list())[2] == 1


def test_path_for_another_account_is_forbidden(make_client, default_tenant, fresh_tenant, api_v1, wire):
    """The SDK always puts its own auth_id in the path, so use its session directly (same
    headers, same error mapping via process_response) with another account's path."""
    victim = make_client(fresh_tenant)
    theirs = create_credential(victim, description="victim's")
    me = make_client(default_tenant)
    session, timeout = me.session, me.timeout
    other = f"{api_v1}/account/{fresh_tenant.account_id}"

    attempts = [
        ("GET", f"{other}/trunks/credentials", None),
        ("POST", f"{other}/credentials", {"username": new_username(), "password": new_password()}),
        ("GET", f"{other}/credentials/{theirs.id}", None),
        ("PUT", f"{other}/credentials/{theirs.id}", {"description": "pwned"}),
        ("DELETE", f"{other}/credentials/{theirs.id}", None),
    ]
    for method, url, body in attempts:
        resp = session.request(method, url, json=body, timeout=timeout)
        with pytest.raises(ForbiddenError):
            me.process_response(method, resp)
        assert wire.last.status == 403, f"{method} {url}"

    listing = victim.credentials.list()
    assert meta_of(listing)[2] == 1
    assert fields(victim.credentials.get(theirs.id)) == fields(theirs)
