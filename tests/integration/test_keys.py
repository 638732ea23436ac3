"""Root-key rotation and data-key re-encryption, on real data written through the API."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from api.schema.common import customer_uuid
from core.db import transaction
from privacy import rotation
from privacy.audit import verify_chain
from privacy.breach_models import KeyJob
from privacy.crypto import parse_envelope
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from privacy.models import DataKey
from tests.api.operations import REGISTER

pytestmark = pytest.mark.asyncio

PROFILE = """
query Profile($id: ID!) {
  customer(id: $id) { profile { firstName lastName } identities { kind value } }
}
"""
PEOPLE = [
    {"channel": "POS", "phone": "+79161230001", "firstName": "Иван", "lastName": "Петров"},
    {"channel": "WEB", "email": "anna@example.com", "firstName": "Анна"},
    {"channel": "MOBILE_APP", "phone": "+79161230003", "lastName": "Сидорова"},
]


async def _people(gql):
    ids = []
    for fields in PEOPLE:
        data = await gql.data(REGISTER, {"input": fields}, as_="app")
        ids.append(data["customerRegister"]["customer"]["id"])
    return ids


async def _profiles(gql, ids):
    return [(await gql.data(PROFILE, {"id": cid}))["customer"] for cid in ids]


async def _blobs(sessions):
    """Every ciphertext in the database with its key id."""
    found = {}
    async with sessions() as session:
        for table, columns in rotation.ciphertext_tables():
            for name in columns:
                rows = await session.execute(text(f"SELECT id, {name} FROM {table.name}"))
                for row_id, blob in rows:
                    if blob is not None:
                        found[(table.name, name, str(row_id))] = bytes(blob)
    return found


async def test_root_rotation_rewraps_every_key_and_a_running_server_keeps_reading(
    gql, sessions, settings, provider
):
    # given three customers, read once through the running app (whose keyring is in memory)
    ids = await _people(gql)
    before = await _profiles(gql, ids)
    blobs = await _blobs(sessions)

    # when another process rotates the root key and re-wraps
    cli_keyring = LocalKeyring(settings.keyring_path)
    new_root = cli_keyring.rotate_root()
    report = await rotation.rewrap_data_keys(sessions, cli_keyring, actor="test")

    # then every live data key is wrapped by the new root, fields are untouched, and the
    # running app (its keyring loaded before the rotation) still reads everything
    assert report.root_key_id == new_root and report.rewrapped >= len(ids)
    async with sessions() as session:
        roots = set((await session.execute(select(DataKey.root_key_id))).scalars())
    assert roots == {new_root}
    assert await _blobs(sessions) == blobs
    assert await _profiles(gql, ids) == before

    # and once the old root is retired it is gone from the keyring file, data still readable
    retired = await rotation.retire_unused_roots(sessions, cli_keyring)
    assert retired == ["root-1"]
    assert list(json.loads(settings.keyring_path.read_text())["roots"]) == [new_root]
    assert await _profiles(gql, ids) == before
    async with sessions() as session:
        assert (await verify_chain(session)).ok


async def test_reencrypt_moves_every_ciphertext_to_a_new_version_and_retires_the_old(
    gql, sessions, provider
):
    ids = await _people(gql)
    before = await _profiles(gql, ids)
    old = await _blobs(sessions)

    report = await rotation.reencrypt(sessions, provider, actor="test", batch=2)

    assert not report.resumed and report.keys_created == len(ids)
    assert report.rows_rewritten >= len(ids)
    new = await _blobs(sessions)
    assert new.keys() == old.keys()
    async with sessions() as session:
        keys = {row.id: row for row in (await session.execute(select(DataKey))).scalars()}
    for place, blob in new.items():
        key = keys[parse_envelope(blob).key_id]
        assert key.version == 2 and key.wrapped_key is not None, place
        assert blob != old[place]
        retired = keys[parse_envelope(old[place]).key_id]
        assert retired.wrapped_key is None and retired.retired_at is not None
        assert retired.destroyed_at is None  # retired, not erased
    assert await _profiles(gql, ids) == before
    # an old ciphertext copied before the rotation can no longer be read
    async with sessions() as session:
        place, blob = next(iter(old.items()))
        cipher = FieldCipher(session, provider)
        assert (
            await cipher.decrypt(table=place[0], column=place[1], row_id=place[2], blob=blob)
            is None
        )


async def test_an_interrupted_reencrypt_resumes_where_it_stopped(gql, sessions, provider):
    ids = await _people(gql)
    before = await _profiles(gql, ids)
    # given a job that created the new versions and rewrote one page, then died
    job_id, resumed = await rotation._open_job(sessions, "test")
    assert not resumed
    await rotation._new_versions(sessions, provider, job_id, 100, rotation._noop)
    async with transaction(sessions) as session:
        job = await rotation._load_job(session, job_id)
        table, columns = rotation.ciphertext_tables()[0]
        changed, last = await rotation._rewrite_page(session, provider, table, columns, None, 1)
        job.table_name, job.after_id, job.rows_rewritten, job.pass_rows = (
            table.name,
            last,
            changed,
            changed,
        )

    # when the command runs again
    report = await rotation.reencrypt(sessions, provider, actor="test")

    # then it continues that job, creates no second set of keys, and finishes
    assert report.resumed and report.job_id == job_id and report.keys_created == len(ids)
    async with sessions() as session:
        versions = (await session.execute(select(DataKey.version))).scalars().all()
        job = await session.get(KeyJob, job_id)
    assert sorted(versions) == [1] * len(ids) + [2] * len(ids)
    assert job is not None and job.status == "DONE"
    assert await _profiles(gql, ids) == before
    assert customer_uuid(ids[0])  # ids stay valid global ids
