"""The attribution cache: one checked row per (settings, sentence), resumable (SQLite)."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import warnings
from pathlib import Path

import numpy as np

from ..config import FLAG_WORDS, cache_dir, settings_key

__all__ = ["CacheError", "AttributionCache"]


class CacheError(RuntimeError):
    """The attribution cache file cannot be used: the message names it and what to do."""


class AttributionCache:
    """A resumable on-disk cache (SQLite): one row per (settings, sentence), committed as it is computed.

    Each row carries a checksum of its value; a row whose checksum, length or numbers do not
    check out (edited, truncated, NaN) is not served: :func:`word_weights` recomputes it with a
    warning. Errors say which of these things is wrong, and only the last advises deleting the file:

    * the path is a folder (or its parent is a file): name a file;
    * the database is locked by another process (``make lab`` and ``make book`` share ``.cache/``):
      each statement waits up to ``timeout`` seconds, then the error says so;
    * the file or its folder is read-only: the cache opens read-only, serves the rows it has and
      warns that new rows are not saved;
    * the disk is full: its own message (the file is healthy and keeps its rows);
    * the file is not a SQLite database, or is corrupt: damaged -- and only when SQLite's ``PRAGMA
      integrity_check`` does not find it sound; a sound file is never called damaged.

    Written here rather than with diskcache: the rows' checksums and the row validators are the point.
    """

    #: seconds a statement waits for another process's write lock before the locked error
    TIMEOUT = 60.0

    def __init__(self, path: Path | str | None = None, timeout: float | None = None):
        self.path = Path(path) if path else cache_dir("attribution") / "weights.sqlite"
        self.timeout = self.TIMEOUT if timeout is None else float(timeout)
        self.read_only = False
        if self.path.is_dir():
            raise CacheError(f"The attribution cache path {self.path} is a folder, not a file: pass a file path "
                             f"such as {self.path / 'weights.sqlite'} (cache=...), or cache=False.")
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise CacheError(f"The attribution cache {self.path} cannot be made: {self.path.parent} is a file, "
                             "not a folder. Point cache= at a file in a folder.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(self.path.parent, os.W_OK) and (not self.path.exists() or os.access(self.path, os.W_OK))
        try:
            if writable:
                self.db = sqlite3.connect(self.path, timeout=self.timeout)
                self.db.execute("CREATE TABLE IF NOT EXISTS weights (key TEXT PRIMARY KEY, value TEXT)")
                columns = {row[1] for row in self.db.execute("PRAGMA table_info(weights)")}
                if "checksum" not in columns:
                    self.db.execute("ALTER TABLE weights ADD COLUMN checksum TEXT")
                self.db.commit()
            else:
                self._open_read_only()
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):
                self._open_read_only()
            else:
                raise self._error(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def _open_read_only(self) -> None:
        if not self.path.exists():
            raise CacheError(f"The attribution cache {self.path} does not exist and its folder is read-only: point "
                             "cache= at a writable file, or pass cache=False.")
        try:
            self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.timeout)
            self.db.execute("SELECT key, value, checksum FROM weights LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        self.read_only = True
        warnings.warn(f"The attribution cache {self.path} is read-only: its rows are served, new ones are computed "
                      "but not saved. Make the file writable, or point cache= at another file, to keep them.",
                      stacklevel=3)

    def _error(self, exc) -> CacheError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return CacheError(f"The attribution cache {self.path} is locked by another process (another notebook, "
                              f"make book or make lab writing to the same .cache/) and stayed locked for "
                              f"{self.timeout:g} s. The file is healthy: wait and run again, pass a longer timeout "
                              "(AttributionCache(path, timeout=600)), or point cache= at another file.")
        if "readonly" in text or "read-only" in text:
            return CacheError(f"The attribution cache {self.path} is read-only ({text}): make it writable, or point "
                              "cache= at another file.")
        if "unable to open" in text:
            return CacheError(f"The attribution cache {self.path} cannot be opened ({text}): check the path and its "
                              "permissions, or point cache= at another file.")
        if "full" in text:  # SQLITE_FULL: "database or disk is full"
            return CacheError(f"The disk holding the attribution cache {self.path} is full ({text}). The file is "
                              "healthy and keeps every row written before: free space on that disk and run again, "
                              "point cache= at a file on another disk, or pass cache=False.")
        if self._healthy():
            return CacheError(f"An operation on the attribution cache {self.path} failed ({text}), but the file "
                              "checks out (PRAGMA integrity_check: ok), so it is not damaged: run again; if this "
                              "repeats, point cache= at another file or pass cache=False.")
        return CacheError(f"The attribution cache {self.path} is damaged ({text}). Delete the file (its weights will "
                          "be recomputed), point cache= at another file, or pass cache=False.")

    def _healthy(self) -> bool:
        """Whether SQLite's own check finds the file sound (then no message may advise deleting it)."""
        try:
            with sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0) as db:
                return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        except (sqlite3.DatabaseError, OSError):
            return False

    @staticmethod
    def key(settings: dict, sentence_id, text: str) -> str:
        return settings_key([settings, str(sentence_id), text], length=None)

    @staticmethod
    def checksum(value: str) -> str:
        return hashlib.sha1(value.encode()).hexdigest()

    @staticmethod
    def check_weights(value: dict) -> str | None:
        """What is wrong with a cached word-weight row (None: nothing)."""
        norms = np.asarray(value["token_norms"], dtype=float)
        if len(norms) != len(value["word_ids"]):
            return f"{len(norms)} token weights for {len(value['word_ids'])} tokens"
        if not np.isfinite(norms).all() or not np.isfinite(value["completeness_gap"]):
            return "it holds a non-finite number"
        return None

    def get(self, key: str, check=None):
        """The cached value, or None when absent or invalid (an invalid row warns: it will be recomputed).
        ``check(value)`` says what is wrong with a row (default :meth:`check_weights`)."""
        try:
            row = self.db.execute("SELECT value, checksum FROM weights WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        if row is None:
            return None
        problem = None
        if row[1] != self.checksum(row[0]):
            problem = "its checksum does not match (the row was edited or damaged)"
        else:
            try:
                value = json.loads(row[0])
                problem = (check or self.check_weights)(value)
            except (ValueError, KeyError, TypeError) as exc:
                problem = f"it cannot be read ({exc})"
        if problem:
            warnings.warn(f"A row of the attribution cache {self.path} is invalid: {problem}; it is recomputed.",
                          stacklevel=3)
            return None
        return value

    def has(self, key: str) -> bool:
        """Whether a row is stored under ``key`` (valid or not)."""
        try:
            return self.db.execute("SELECT 1 FROM weights WHERE key = ?", (key,)).fetchone() is not None
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def put(self, key: str, value: dict) -> None:
        if self.read_only:
            return
        text = json.dumps(value)
        try:
            self.db.execute("INSERT OR REPLACE INTO weights (key, value, checksum) VALUES (?, ?, ?)",
                            (key, text, self.checksum(text)))
            self.db.commit()
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise self._error(exc) from exc
            self.read_only = True  # made read-only while we ran: keep serving what is there
            warnings.warn(f"The attribution cache {self.path} became read-only ({exc}): new rows are not saved.",
                          stacklevel=3)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    @classmethod
    def open(cls, cache):
        """``cache`` as word_weights takes it: True (the default file), a path, an AttributionCache, or False (or
        None); a word that spells a flag (``"False"``) or anything else is refused, naming the argument."""
        if isinstance(cache, cls):
            return cache
        if cache is None or isinstance(cache, (bool, np.bool_)):
            return cls() if cache else None
        if isinstance(cache, str) and cache.strip().lower() in FLAG_WORDS:
            raise ValueError(f"cache={cache!r} is a word, not a path: pass cache=True (the book's cache), cache=False "
                             "(none), or the path of a file.")
        if not isinstance(cache, (str, os.PathLike)) or not str(cache).strip():
            raise TypeError(f"cache must be True, False, the path of a file or an AttributionCache, got {cache!r}.")
        return cls(cache)

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM weights").fetchone()[0]
