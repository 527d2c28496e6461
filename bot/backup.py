"""A consistent backup of the embedded (SQLite) database while the bot runs, with FILES_DIR.

SQLite runs in WAL mode: copying the file with ``cp`` may catch a half-applied transaction. The
online backup API copies the database as of one read transaction instead, however busy the bot
is. Patients' files are copied after it: every file the backed-up database knows was written
before its row was committed, so it is there (a file newer than the snapshot is harmless)."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

DATABASE_FILE = "oblako.db"
FILES = "files"


class BackupError(Exception):
    """The backup cannot be made; ``str()`` says why in one line."""


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            "backup: DATABASE_URL is PostgreSQL — back it up with pg_dump (README, «Backup and "
            "restore»)"
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("backup: DATABASE_URL names no database file")
    return Path(url.database)


def backup(database_url: str, files_dir: Path, destination: Path) -> Path:
    """Write ``destination/oblako-<UTC time>/`` holding ``oblako.db`` and ``files/``."""
    source = sqlite_path(database_url)
    if not source.exists():
        raise BackupError(f"backup: no database at {source}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = destination / f"oblako-{stamp}"
    target.mkdir(parents=True, exist_ok=False)
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    writer = sqlite3.connect(target / DATABASE_FILE)
    try:
        with writer:
            reader.backup(writer)  # all pages in one step: one consistent snapshot
        check = writer.execute("PRAGMA integrity_check").fetchone()
        if not check or check[0] != "ok":
            raise BackupError("backup: the copy failed its integrity check")
    finally:
        writer.close()
        reader.close()
    if files_dir.exists():
        shutil.copytree(files_dir, target / FILES)
    else:
        (target / FILES).mkdir()
    return target
