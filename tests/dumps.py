"""Raw bytes of a test database: the SQLite files, or a pg_dump of the PostgreSQL database."""

import shutil
import subprocess

from sqlalchemy.engine import make_url

from core.settings import sqlite_path


def raw_database(database_url: str) -> bytes:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = sqlite_path(database_url)
        assert path is not None
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    assert shutil.which("pg_dump"), "the PostgreSQL plaintext check needs pg_dump (postgresql-client)"
    command = [
        "pg_dump",
        "-h",
        url.host or "127.0.0.1",
        "-p",
        str(url.port or 5432),
        "-U",
        url.username or "postgres",
        url.database or "",
    ]
    return subprocess.run(command, check=True, capture_output=True).stdout
