"""The article registry and keyword index: one SQLite file, changed only in transactions.

SQLite is the source of truth for which articles exist. An article becomes visible in the same
transaction that writes its chunks and their keyword postings, so a reader never sees half an
article, and a crash leaves either the old version or the new one. Chroma holds vectors keyed by
the same chunk ids; vectors of chunks this registry does not know are orphans and are swept.

The keyword index is SQLite FTS5 over pre-tokenized text (jieba search mode), ranked with BM25.
Searches are ranked by an in-memory mirror of it (vectorstore/keyword_postings.py) that gives FTS5's
own scores many times faster; the mirror follows writes from every process through `chunk_log`, a
list of chunk rows added and deleted, written in the same transactions as the rows themselves.
Several processes may read and write the same file (WAL mode, busy timeout).
"""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from qa.errors import StoreUnavailableError
from vectorstore.keyword import tokenize
from vectorstore.keyword_postings import KeywordPostings
from vectorstore.records import ArticleRecord, ChunkRecord, ScoredChunk

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
# Postings (chunks holding a query word, summed over its words) one keyword search may score. FTS5
# scores every chunk that holds any query word, so at 100k chunks a question with common words (获得,
# 研究, 年) scored tens of thousands of rows. Past this budget the most common words are left out of
# the query: BM25 weights them least. CMRC trial questions over CMRC + 100k synthetic chunks, without
# the budget -> with it: hit@5 0.926 -> 0.924, answer contains gold 0.744 -> 0.749, keyword search
# p50 11.4 -> 8.4 ms, p95 76 -> 13 ms (benchmarks/results/keyword_budget.json; 10_000 cost 1.3 points
# of hit@5). A question of ten words over fewer than 1,500 chunks never reaches it.
KEYWORD_MAX_POSTINGS = 15_000

# Up to this many chunks the in-memory keyword mirror is built inside the first search (under 0.5 s);
# past it, in the background while FTS5 answers.
MIRROR_SYNC_BUILD_CHUNKS = 20_000
# A mirror further behind the change log than this rebuilds (in the background) instead of catching up.
MIRROR_MAX_CATCH_UP = 20_000
# Change-log entries kept: a process whose mirror is further behind rebuilds it from FTS5.
CHUNK_LOG_KEEP = 100_000

# The cache key of the chunk count among the cached document frequencies (tokens are strings).
_CHUNKS = ("chunks",)
# Title tokens count double: a question naming an article's subject usually names its title.
_BM25_WEIGHTS = (2.0, 1.0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    position INTEGER NOT NULL,
    title TEXT NOT NULL,
    subtitle TEXT NOT NULL,
    byline TEXT NOT NULL,
    column_name TEXT NOT NULL,
    date TEXT NOT NULL,
    url TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    paragraphs TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_source ON articles(source);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    article_id TEXT NOT NULL REFERENCES articles(id),
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_vocab USING fts5vocab(chunk_terms, 'row');
CREATE TABLE IF NOT EXISTS chunk_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_rowid INTEGER NOT NULL,
    added INTEGER NOT NULL
);
"""


def _fts_query(tokens: Iterable[str]) -> str:
    unique = list(dict.fromkeys(tokens))
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in unique)


class DocStore:
    def __init__(self, path: Path, *, keyword_in_memory: bool = True):
        self.path = path
        self._local = threading.local()
        self._keyword_in_memory = keyword_in_memory
        self._mirror: KeywordPostings | None = None
        self._mirror_lock = threading.Lock()
        self._mirror_building = False
        # Chunk count and document frequencies, valid for one generation (every write bumps it, in any
        # process): the answerer asks for them on every question, and at 100k chunks counting costs ms.
        self._stats_lock = threading.Lock()
        self._stats: tuple[int, dict] = (-1, {})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # executescript commits on its own; IF NOT EXISTS makes concurrent first opens harmless.
            self._conn().executescript(_SCHEMA)
        except (OSError, sqlite3.OperationalError) as exc:
            self.close()
            raise self._storage_error("open", exc) from exc
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")

    # -- connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections must not be shared across threads.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def _own_conn(self) -> sqlite3.Connection:
        """This thread's connection, outside any transaction of ours. A transaction still open on it that
        no caller owns (its COMMIT and ROLLBACK failed, e.g. while the data dir was read-only) would pin
        an old snapshot for every later read of this thread and refuse every write: drop that connection."""
        db = self._conn()
        if db.in_transaction:
            self._drop_conn(db)
            db = self._conn()
        return db

    def _drop_conn(self, db: sqlite3.Connection) -> None:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        try:
            db.close()
        except sqlite3.Error:
            pass
        self._local.conn = None

    def _busy(self) -> bool:
        return getattr(self._local, "writing", False) or getattr(self._local, "reading", False)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            db = self._own_conn()
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._storage_error("write", exc) from exc
        self._local.writing = True
        try:
            yield db
            # Inside the try: a COMMIT that fails (disk full) leaves the transaction open, and this
            # thread's connection must not stay stuck in it.
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    self._drop_conn(db)
            if isinstance(exc, sqlite3.OperationalError):
                raise self._storage_error("write", exc) from exc
            raise
        finally:
            self._local.writing = False

    def _storage_error(self, what: str, exc: BaseException) -> StoreUnavailableError:
        """A full disk, a read-only or vanished data dir, a lock held too long: one clear line."""
        detail = getattr(exc, "strerror", None) or str(exc)
        low = detail.lower()
        if "full" in low or getattr(exc, "errno", None) == errno.ENOSPC:
            hint = "the disk is full; free some space and try again"
        elif "readonly" in low or "read-only" in low or getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES):
            hint = "the data directory is read-only"
        elif "locked" in low or "busy" in low:
            hint = "another process holds the index locked"
        else:
            return StoreUnavailableError(f"cannot {what} the article registry {self.path}: {detail}")
        return StoreUnavailableError(f"cannot {what} the article registry {self.path}: {hint} ({detail})")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- meta ----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta_if_absent(self, key: str, value: str) -> str:
        """Store `value` unless the key has one; return the stored value (first writer wins)."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
            return db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()["value"]

    def generation(self) -> int:
        """A counter bumped by every write, so other processes can tell their caches are stale."""
        return int(self.get_meta("generation") or 0)

    # -- writes --------------------------------------------------------------------------------
    def replace_article(self, article: ArticleRecord, chunks: list[ChunkRecord]) -> list[str]:
        """Make `article` with `chunks` visible at once; return the chunk ids it replaced."""
        with self._tx() as db:
            old = [r["id"] for r in db.execute("SELECT id FROM chunks WHERE article_id = ?", (article.id,))]
            self._delete_article_rows(db, article.id)
            added = []
            db.execute(
                "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    article.id, article.source, article.position, article.title, article.subtitle,
                    article.byline, article.column, article.date, article.url, article.kind,
                    article.text, json.dumps(list(article.paragraphs), ensure_ascii=False),
                    article.content_hash, time.time(),
                ),
            )
            title_terms = " ".join(tokenize(article.title + " " + article.subtitle))
            for c in chunks:
                cur = db.execute(
                    'INSERT INTO chunks (id, article_id, ordinal, start, "end", text) VALUES (?,?,?,?,?,?)',
                    (c.id, c.article_id, c.ordinal, c.start, c.end, c.text),
                )
                db.execute(
                    "INSERT INTO chunk_terms (rowid, title, body) VALUES (?,?,?)",
                    (cur.lastrowid, title_terms, " ".join(tokenize(c.text))),
                )
                added.append((cur.lastrowid,))
            db.executemany("INSERT INTO chunk_log (chunk_rowid, added) VALUES (?, 1)", added)
            self._bump(db)
        new_ids = {c.id for c in chunks}
        return [i for i in old if i not in new_ids]

    def delete_article(self, article_id: str) -> list[str]:
        """Remove an article; return its chunk ids (for the vector store to drop)."""
        with self._tx() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM chunks WHERE article_id = ?", (article_id,))]
            found = self._delete_article_rows(db, article_id)
            if found:
                self._bump(db)
        return ids if found else []

    @staticmethod
    def _delete_article_rows(db: sqlite3.Connection, article_id: str) -> bool:
        db.execute(
            "INSERT INTO chunk_log (chunk_rowid, added) SELECT rowid, 0 FROM chunks WHERE article_id = ?", (article_id,)
        )
        db.execute(
            "DELETE FROM chunk_terms WHERE rowid IN (SELECT rowid FROM chunks WHERE article_id = ?)", (article_id,)
        )
        db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
        return db.execute("DELETE FROM articles WHERE id = ?", (article_id,)).rowcount > 0

    @staticmethod
    def _bump(db: sqlite3.Connection) -> None:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        # Two queries: SQLite answers a lone min() or max() of the key from the b-tree, both together by a scan.
        first = db.execute("SELECT min(seq) FROM chunk_log").fetchone()[0]
        last = db.execute("SELECT max(seq) FROM chunk_log").fetchone()[0]
        if first is not None and last - first >= 2 * CHUNK_LOG_KEEP:
            through = last - CHUNK_LOG_KEEP
            db.execute("DELETE FROM chunk_log WHERE seq <= ?", (through,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('chunk_log_pruned_through', ?)", (str(through),))

    # -- reads ---------------------------------------------------------------------------------
    def content_hash(self, article_id: str) -> str | None:
        row = self._conn().execute("SELECT content_hash FROM articles WHERE id = ?", (article_id,)).fetchone()
        return row["content_hash"] if row else None

    def article_ids_from_source(self, source: str) -> list[str]:
        rows = self._conn().execute("SELECT id FROM articles WHERE source = ? ORDER BY position", (source,))
        return [r["id"] for r in rows]

    def get_article(self, article_id: str) -> ArticleRecord | None:
        row = self._conn().execute("SELECT * FROM articles WHERE id = ?", (article_id,)).fetchone()
        return _article(row) if row else None

    def list_articles(self) -> list[ArticleRecord]:
        rows = self._conn().execute("SELECT * FROM articles ORDER BY source, position, id")
        return [_article(r) for r in rows]

    def count_articles(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM articles").fetchone()[0]

    def count_chunks(self) -> int:
        with self._snapshot() as db:
            cache = self._stats_for(db)
            if _CHUNKS not in cache:
                cache[_CHUNKS] = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            return cache[_CHUNKS]

    def chunk_ids(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT id FROM chunks")}

    def get_chunks(self, ids: list[str]) -> dict[str, ChunkRecord]:
        out: dict[str, ChunkRecord] = {}
        db = self._conn()
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            rows = db.execute(
                'SELECT c.id, c.article_id, c.ordinal, c.start, c."end", c.text, a.title FROM chunks c '
                f"JOIN articles a ON a.id = c.article_id WHERE c.id IN ({','.join('?' * len(part))})",
                part,
            )
            for r in rows:
                out[r["id"]] = _chunk(r)
        return out

    def chunks_of(self, article_id: str) -> list[ChunkRecord]:
        rows = self._conn().execute(
            'SELECT c.id, c.article_id, c.ordinal, c.start, c."end", c.text, a.title FROM chunks c '
            "JOIN articles a ON a.id = c.article_id WHERE c.article_id = ? ORDER BY c.ordinal",
            (article_id,),
        )
        return [_chunk(r) for r in rows]

    def document_frequencies(self, tokens: Iterable[str]) -> dict[str, int]:
        """How many chunks contain each token (title or body), for IDF weights."""
        unique = list(dict.fromkeys(tokens))
        if not unique:
            return {}
        with self._snapshot() as db:
            cache = self._stats_for(db)
            missing = [t for t in unique if t not in cache]
            if missing:
                rows = db.execute(
                    f"SELECT term, doc FROM chunk_vocab WHERE term IN ({','.join('?' * len(missing))})", missing
                )
                found = {r["term"]: r["doc"] for r in rows}
                cache.update((t, found.get(t, 0)) for t in missing)
            return {t: cache[t] for t in unique}

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so a generation and the values read with it belong together."""
        if self._busy():  # inside a write (its values may yet roll back: _stats_for does not cache) or a read
            yield self._conn()
            return
        db = self._own_conn()
        db.execute("BEGIN")
        self._local.reading = True
        try:
            yield db
        finally:
            self._local.reading = False
            try:
                db.execute("COMMIT")
            except sqlite3.Error:  # ending a read: what was read stands; the connection must not stay in it
                self._drop_conn(db)

    def _stats_for(self, db: sqlite3.Connection) -> dict:
        """The cache of counts for the generation `db` sees (a throwaway one for an older snapshot)."""
        if getattr(self._local, "writing", False):
            return {}
        gen = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        with self._stats_lock:
            have, cache = self._stats
            if gen == have and len(cache) < 200_000:
                return cache
            if gen < have:
                return {}
            self._stats = (gen, {})
            return self._stats[1]

    def keyword_terms(self, tokens: Iterable[str], *, mirror: KeywordPostings | None = None) -> list[str]:
        """The distinct tokens a keyword search matches: all of them, unless together they hold more than
        KEYWORD_MAX_POSTINGS postings; then the rarest that fit (at least one)."""
        unique = list(dict.fromkeys(tokens))
        n_chunks = len(mirror) if mirror is not None else self.count_chunks()
        if len(unique) < 2 or len(unique) * n_chunks <= KEYWORD_MAX_POSTINGS:
            return unique
        df = mirror.document_frequencies(unique) if mirror is not None else self.document_frequencies(unique)
        if sum(df.values()) <= KEYWORD_MAX_POSTINGS:
            return unique
        kept: set[str] = set()
        total = 0
        for t in sorted(unique, key=lambda t: df[t]):  # stable: equal counts keep the question's order
            if kept and total + df[t] > KEYWORD_MAX_POSTINGS:
                break
            kept.add(t)
            total += df[t]
        return [t for t in unique if t in kept]

    def keyword_search(self, query: str, k: int) -> list[ScoredChunk]:
        tokens = tokenize(query)
        if not tokens:
            return []
        with self._snapshot() as db:
            with self._mirror_lock:
                mirror = self._current_mirror(db)
                if mirror is not None:
                    hits = mirror.search(self.keyword_terms(tokens, mirror=mirror), k)
            if mirror is not None:
                return self._scored_rows(db, hits)
            return self._fts_search(db, self.keyword_terms(tokens), k)

    def _fts_search(self, db: sqlite3.Connection, tokens: list[str], k: int) -> list[ScoredChunk]:
        if not tokens:
            return []
        # Rank inside FTS5 first and join only the top k: joining first fetched the chunk and article
        # rows of every match before sorting (3x slower at 10k chunks). Ties keep rowid order, as before.
        rows = db.execute(
            'SELECT c.id, c.article_id, c.ordinal, c.start, c."end", c.text, a.title, t.s FROM '
            "(SELECT rowid, bm25(chunk_terms, ?, ?) AS s FROM chunk_terms WHERE chunk_terms MATCH ? "
            " ORDER BY s, rowid LIMIT ?) t "
            "JOIN chunks c ON c.rowid = t.rowid JOIN articles a ON a.id = c.article_id ORDER BY t.s, t.rowid",
            (*_BM25_WEIGHTS, _fts_query(tokens), k),
        ).fetchall()
        # FTS5's bm25() is negative, lower is better; flip it so higher is better like cosine.
        return [
            ScoredChunk(_chunk(r), -r["s"], rank, {"keyword": -r["s"]})
            for rank, r in enumerate(rows, 1)
            if -r["s"] > 0
        ]

    @staticmethod
    def _scored_rows(db: sqlite3.Connection, hits: list[tuple[int, float]]) -> list[ScoredChunk]:
        if not hits:
            return []
        rows = db.execute(
            'SELECT c.rowid AS r, c.id, c.article_id, c.ordinal, c.start, c."end", c.text, a.title FROM chunks c '
            f"JOIN articles a ON a.id = c.article_id WHERE c.rowid IN ({','.join('?' * len(hits))})",
            [rowid for rowid, _ in hits],
        )
        by_rowid = {r["r"]: r for r in rows}
        out = []
        for rowid, score in hits:
            if rowid in by_rowid and score > 0:
                out.append(ScoredChunk(_chunk(by_rowid[rowid]), score, len(out) + 1, {"keyword": score}))
        return out

    # -- the in-memory keyword mirror -----------------------------------------------------------
    def prepare_keyword_search(self) -> None:
        """Build the in-memory keyword mirror now (a few seconds at 100k chunks), if it is enabled."""
        if not self._keyword_in_memory:
            return
        with self._mirror_lock:
            if self._mirror is not None:
                return
        mirror = self._build_mirror()
        with self._mirror_lock:
            if self._mirror is None or self._mirror.generation < mirror.generation:
                self._mirror = mirror

    def _current_mirror(self, db: sqlite3.Connection) -> KeywordPostings | None:
        """The mirror, caught up to the snapshot `db` reads; None while there is none (FTS5 answers).
        Called with _mirror_lock held."""
        if not self._keyword_in_memory or getattr(self._local, "writing", False):
            return None  # inside a write: its rows may yet roll back
        gen = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        mirror = self._mirror
        if mirror is None:
            if self._mirror_building:
                return None
            if self.count_chunks() <= MIRROR_SYNC_BUILD_CHUNKS:
                self._mirror = self._build_mirror(db)
                return self._mirror
            self._start_background_build()
            return None
        if mirror.generation == gen:
            return mirror
        if mirror.generation > gen:
            return None  # this snapshot is older than the mirror: answer it from FTS5
        if not self._catch_up(db, mirror, gen):
            self._mirror = None
            self._start_background_build()
            return None
        return mirror

    def _build_mirror(self, db: sqlite3.Connection | None = None) -> KeywordPostings:
        if db is None:
            with self._snapshot() as db:
                return self._build_mirror(db)
        gen = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        seq = db.execute("SELECT max(seq) FROM chunk_log").fetchone()[0] or 0
        rows = db.execute("SELECT rowid, title, body FROM chunk_terms")
        mirror = KeywordPostings.build(((r[0], r[1], r[2]) for r in rows), _BM25_WEIGHTS)
        mirror.generation, mirror.seq = gen, seq
        return mirror

    def _start_background_build(self) -> None:
        """Called with _mirror_lock held."""
        if self._mirror_building:
            return
        self._mirror_building = True

        def build() -> None:
            try:
                mirror = self._build_mirror()
                with self._mirror_lock:
                    if self._mirror is None:
                        self._mirror = mirror
            except Exception:  # noqa: BLE001 - FTS5 answers alone from now on, with the same results
                log.warning("the in-memory keyword index could not be built; FTS5 answers instead", exc_info=True)
                self._keyword_in_memory = False
            finally:
                with self._mirror_lock:
                    self._mirror_building = False
                self.close()  # this thread's connection

        threading.Thread(target=build, name="qa-keyword-mirror", daemon=True).start()

    def _catch_up(self, db: sqlite3.Connection, mirror: KeywordPostings, gen: int) -> bool:
        """Apply the change log since the mirror's last entry; False when only a rebuild can do."""
        pruned = db.execute("SELECT value FROM meta WHERE key = 'chunk_log_pruned_through'").fetchone()
        if pruned is not None and mirror.seq < int(pruned[0]):
            return False
        changes = db.execute(
            "SELECT seq, chunk_rowid, added FROM chunk_log WHERE seq > ? ORDER BY seq LIMIT ?",
            (mirror.seq, MIRROR_MAX_CATCH_UP + 1),
        ).fetchall()
        if len(changes) > MIRROR_MAX_CATCH_UP:
            return False
        last: dict[int, int] = {}
        for _, rowid, added in changes:
            last[rowid] = added
        for rowid in last:
            mirror.remove(rowid)
        wanted = [rowid for rowid, added in last.items() if added]
        rows = {}
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            for r in db.execute(
                f"SELECT rowid, title, body FROM chunk_terms WHERE rowid IN ({','.join('?' * len(part))})", part
            ):
                rows[r[0]] = r
        if len(rows) != len(wanted):
            return False  # the log and the rows disagree: rebuild from the rows
        for rowid in sorted(wanted):
            r = rows[rowid]
            mirror.add(rowid, r[1], r[2])
        if changes:
            mirror.seq = changes[-1][0]
        mirror.generation = gen
        return True


def _article(r: sqlite3.Row) -> ArticleRecord:
    return ArticleRecord(
        id=r["id"], title=r["title"], text=r["text"], paragraphs=tuple(json.loads(r["paragraphs"])),
        source=r["source"], subtitle=r["subtitle"], byline=r["byline"], column=r["column_name"],
        date=r["date"], url=r["url"], kind=r["kind"], content_hash=r["content_hash"], position=r["position"],
    )


def _chunk(r: sqlite3.Row) -> ChunkRecord:
    return ChunkRecord(
        id=r["id"], article_id=r["article_id"], ordinal=r["ordinal"], start=r["start"], end=r["end"],
        text=r["text"], title=r["title"],
    )
