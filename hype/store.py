"""SQLite storage of a study: its settings, images, evaluators, sessions, trial plans and judgments.

One connection per request (``sqlite3`` connections are not shared across threads); WAL journaling
lets pages read while an answer is written; every answer is written inside ``BEGIN IMMEDIATE`` so two
requests for the same trial cannot both pass the "is this the next trial" check. The only files
written are the database and SQLite's own ``-wal`` / ``-shm`` files beside it.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .images import StudyImage
from .protocol import Trial

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL CHECK (pool IN ('real', 'fake', 'tutorial_real', 'tutorial_fake')),
    path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluators (
    id INTEGER PRIMARY KEY,
    worker TEXT UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    evaluator_id INTEGER NOT NULL REFERENCES evaluators(id),
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS trials (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    idx INTEGER NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('tutorial', 'evaluation')),
    block INTEGER NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id),
    truth TEXT NOT NULL CHECK (truth IN ('real', 'fake')),
    PRIMARY KEY (session_id, idx)
);
CREATE TABLE IF NOT EXISTS judgments (
    session_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    phase TEXT NOT NULL,
    block INTEGER NOT NULL,
    image_id TEXT NOT NULL,
    truth TEXT NOT NULL,
    answer TEXT NOT NULL CHECK (answer IN ('real', 'fake')),
    exposure_ms INTEGER,
    shown_ms REAL,
    response_ms REAL NOT NULL,
    answered_at TEXT NOT NULL,
    PRIMARY KEY (session_id, idx),
    FOREIGN KEY (session_id, idx) REFERENCES trials(session_id, idx)
);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class StudyMismatch(ValueError):
    """The options given to ``serve`` differ from those the database was created with."""


class Store:
    """The study database at ``path`` (created with its folder on first use).

    Args:
        path: the SQLite file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- the study ---------------------------------------------------------------------------

    def initialise(self, settings: dict) -> dict[str, str]:
        """Create or reopen the study; returns its ``secret`` and ``results_token``.

        Args:
            settings: what must not change across restarts (protocol, folders); compared with the
                stored copy on reopening.
        Raises:
            StudyMismatch: naming the setting that differs.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connection() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
            with self.transaction(conn):
                meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}
                if "settings" in meta:
                    stored = json.loads(meta["settings"])
                    for key in sorted(set(stored) | set(settings)):
                        if stored.get(key) != settings.get(key):
                            raise StudyMismatch(
                                f"{self.path} holds a study with {key} = {stored.get(key)!r}, but this start has "
                                f"{settings.get(key)!r}; pass the same options or another --db")
                else:
                    meta = {"settings": json.dumps(settings, sort_keys=True),
                            "secret": secrets.token_hex(16), "results_token": secrets.token_urlsafe(16)}
                    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            return {"secret": meta["secret"], "results_token": meta["results_token"]}

    def sync_images(self, images: dict[str, StudyImage]) -> None:
        """Record the catalogue; fail if an image used by a stored trial is missing from it."""
        with self.connection() as conn, self.transaction(conn):
            conn.executemany("INSERT OR IGNORE INTO images (id, pool, path) VALUES (?, ?, ?)",
                             [(im.id, im.pool, im.relpath) for im in images.values()])
            used = conn.execute("SELECT DISTINCT images.id, images.pool, images.path FROM trials "
                                "JOIN images ON images.id = trials.image_id").fetchall()
            gone = [f"{r['pool']}:{r['path']}" for r in used if r["id"] not in images]
            if gone:
                raise StudyMismatch(f"images used by stored sessions are missing from the folders: {', '.join(gone[:5])}"
                                    + (f" and {len(gone) - 5} more" if len(gone) > 5 else ""))

    def settings(self) -> dict:
        with self.connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        if row is None:
            raise ValueError(f"{self.path} holds no study (start one with `human_eval.py serve`)")
        return json.loads(row["value"])

    # -- sessions ---------------------------------------------------------------------------

    def create_session(self, worker: str | None, trials: list[Trial]) -> str:
        """A new session for ``worker`` (an evaluator label, or None for an anonymous evaluator)."""
        token = secrets.token_urlsafe(18)
        with self.connection() as conn, self.transaction(conn):
            row = conn.execute("SELECT id FROM evaluators WHERE worker = ?", (worker,)).fetchone() if worker else None
            if row is None:
                evaluator = conn.execute("INSERT INTO evaluators (worker, created_at) VALUES (?, ?)",
                                         (worker, now())).lastrowid
            else:
                evaluator = row["id"]
            session = conn.execute("INSERT INTO sessions (token, evaluator_id, created_at) VALUES (?, ?, ?)",
                                   (token, evaluator, now())).lastrowid
            conn.executemany(
                "INSERT INTO trials (session_id, idx, phase, block, image_id, truth) VALUES (?, ?, ?, ?, ?, ?)",
                [(session, t.index, t.phase, t.block, t.image_id, t.truth) for t in trials])
        return token

    @staticmethod
    def session(conn: sqlite3.Connection, token: str) -> sqlite3.Row | None:
        return conn.execute("SELECT * FROM sessions WHERE token = ?", (token,)).fetchone()

    @staticmethod
    def next_trial(conn: sqlite3.Connection, session_id: int) -> sqlite3.Row | None:
        """The first trial of the plan without a judgment (None when the session is complete)."""
        return conn.execute(
            "SELECT t.* FROM trials t LEFT JOIN judgments j ON j.session_id = t.session_id AND j.idx = t.idx "
            "WHERE t.session_id = ? AND j.idx IS NULL ORDER BY t.idx LIMIT 1", (session_id,)).fetchone()

    @staticmethod
    def block_answers(conn: sqlite3.Connection, session_id: int, phase: str, block: int) -> list[bool]:
        """Whether each answered trial of a block was right, in order."""
        rows = conn.execute("SELECT truth = answer AS ok FROM judgments WHERE session_id = ? AND phase = ? AND block = ? "
                            "ORDER BY idx", (session_id, phase, block)).fetchall()
        return [bool(r["ok"]) for r in rows]

    # -- reading everything back ------------------------------------------------------------------

    def judgments(self) -> list[dict]:
        """Every judgment with its session, evaluator and image path, in session and trial order."""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT s.token AS session, s.id AS session_id, s.evaluator_id AS evaluator, e.worker, "
                "s.finished_at, j.idx, j.phase, j.block, j.image_id, i.pool, i.path AS image_path, j.truth, "
                "j.answer, j.exposure_ms, j.shown_ms, j.response_ms, j.answered_at "
                "FROM judgments j JOIN sessions s ON s.id = j.session_id JOIN evaluators e ON e.id = s.evaluator_id "
                "JOIN images i ON i.id = j.image_id ORDER BY s.id, j.idx").fetchall()
        return [dict(r) for r in rows]

    def session_counts(self) -> dict[str, int]:
        with self.connection() as conn:
            row = conn.execute("SELECT COUNT(*) AS started, COUNT(finished_at) AS finished FROM sessions").fetchone()
        return {"started": row["started"], "finished": row["finished"]}
