"""Database access: engines, schema migration on startup, one long-lived session and id allocation.

The compute service keeps every live row it owns in the session's identity map and flushes in
batches: actions never reload rows, so a long simulation costs one ``UPDATE`` per changed row
per commit rather than a query per read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, inspect, make_url, select
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from novawatch.compute import db
from novawatch.redact import mask

log = logging.getLogger("novawatch.compute.repository")

DEFAULT_URL = "sqlite:///novawatch-compute.db"

#: Alembic's version table of the compute schema (see migrations/env.py).
VERSION_TABLE = "novawatch_compute_version"

T = TypeVar("T", bound=db.Base)

#: Tables whose integer ids the repository assigns (so every backend gives the same ids).
_COUNTED: tuple[type[db.Base], ...] = (
    db.Service, db.ComputeNode, db.Flavor, db.Instance, db.BlockDeviceMapping,
    db.InstanceFault, db.InstanceAction, db.Migration, db.InstanceActionEvent, db.KeyPair, db.InstanceGroup,
)


def normalize_url(url: str | Path | None) -> str:
    """A SQLAlchemy URL: a bare path means a SQLite file; ``postgresql://`` gets the psycopg driver."""
    if url is None:
        return DEFAULT_URL
    text = str(url)
    if "://" not in text:
        return f"sqlite:///{text}"
    scheme, _, rest = text.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return text


class DatabaseError(Exception):
    """The compute database cannot be opened, migrated or read. One line: the database (its password masked),
    what went wrong, and what to check."""


#: What a URL novawatch cannot use is told: the databases it supports.
_SUPPORTED = ("novawatch keeps the compute database in SQLite (a file path, or sqlite:///PATH) or PostgreSQL "
             "(postgresql://USER:PASSWORD@HOST/DB)")


@contextmanager
def database_errors(url: str | Path | None, doing: str) -> Iterator[None]:
    """What SQLAlchemy or a database driver raises inside, as one :class:`DatabaseError` on ``doing`` (a verb:
    "open", "migrate", "read") the database at ``url``; nothing else is caught."""
    try:
        yield
    except (SQLAlchemyError, ImportError) as exc:
        raise DatabaseError(_describe(url, exc, doing)) from exc


def _describe(url: str | Path | None, exc: BaseException, doing: str) -> str:
    """The one-line message of :func:`database_errors`."""
    reason = driver_message(exc)
    if isinstance(exc, ArgumentError | ImportError):  # a malformed URL, an unknown scheme or a missing driver
        advice = _SUPPORTED
    elif _is_sqlite(url):
        advice = "check the path: its folder must exist and novawatch must be allowed to write there"
    else:
        advice = "check the URL, and that the database is running and reachable, then start again"
    where = DEFAULT_URL if url is None else str(url)
    return f"cannot {doing} the compute database {mask(where)}: {mask(reason)}; {advice}"


def driver_message(exc: BaseException) -> str:
    """The first line of what the database driver said: without SQLAlchemy's wrapping (its class, a web link)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return lines[0][:300] if lines else type(cause).__name__


def _is_sqlite(url: str | Path | None) -> bool:
    """Whether ``url`` names a SQLite database (a bare path does)."""
    try:
        return make_url(normalize_url(url)).get_backend_name() == "sqlite"
    except ArgumentError:
        return False


def require_schema(url: str | Path | None, engine: Engine) -> None:
    """:class:`DatabaseError` unless the database at ``url`` holds the compute schema; for a read, which
    would otherwise fail on the first table it misses (and SQLite would create a missing file)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    missing = f"no such file: {database}" if database and not Path(database).exists() else None
    if missing is None and not inspect(engine).has_table(VERSION_TABLE):
        missing = f"it has no {VERSION_TABLE} table"
    if missing is not None:
        raise DatabaseError(f"{mask(str(url))} is not a compute database ({missing}); point at the compute "
                            "service's database (its --database-url), or create one with `novawatch compute "
                            "db-upgrade --db URL`")


def make_engine(url: str | Path | None = None) -> Engine:
    """An engine for ``url``; SQLite gets WAL-free pragmas tuned for a single writer."""
    full = normalize_url(url)
    # The outbox relay deletes from its own connection while actions commit: SQLite waits for the lock.
    options: dict[str, Any] = {"connect_args": {"timeout": 30}} if _is_sqlite(full) else {}
    engine = create_engine(full, **options)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            # One process writes; durability of a simulation run is not worth an fsync per commit.
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic ``upgrade head``)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("novawatch.compute") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def reset(engine: Engine) -> None:
    """Drop every compute table and the compute schema's version table (a fresh simulation run)."""
    with engine.begin() as conn:
        db.Base.metadata.drop_all(conn)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {VERSION_TABLE}")


def clear(engine: Engine) -> None:
    """Delete every row of the compute tables, keeping the schema (cheaper than dropping it)."""
    with engine.begin() as conn:
        for table in reversed(db.Base.metadata.sorted_tables):
            conn.execute(table.delete())


#: Their table names (each has a sequence when several workers share the database: compute/shared.py).
COUNTED_TABLES: tuple[str, ...] = tuple(model.__tablename__ for model in _COUNTED)

#: Where ids come from when several workers share the database: (session, table) -> a new id.
Allocate = Callable[[Session, str], int]

#: Tables whose rows are bookkeeping of the workers and the outbox, not state: never recorded as changes.
_UNRECORDED = frozenset({"notification_outbox", "compute_state", "compute_changes"})

#: A changed row: (table, primary key as text) -> the instance whose derived state it feeds, if any.
Changes = dict[tuple[str, str], str | None]


class Repository:
    """One session over the compute database, with application-assigned ids and batched commits.

    ``track_changes`` records every row each flush writes (:attr:`changes`), for the change log that
    lets other workers catch up (:mod:`novawatch.compute.catchup`).
    """

    def __init__(self, engine: Engine, *, track_changes: bool = False) -> None:
        self.engine = engine
        self.session = Session(engine, expire_on_commit=False, autoflush=False)
        #: The rows written since :meth:`take_changes` (with ``track_changes``).
        self.changes: Changes = {}
        self.track_changes = False
        if track_changes:
            self.track()
        #: Shared ids (:meth:`share_ids`); None: this process is the only writer and counts them itself.
        self.allocate: Allocate | None = None
        # One statement for every table's highest id: a reload (after each other worker's commit, with
        # ``compute serve --workers N``) pays one round trip for them, not one per table.
        tops = self.session.execute(select(*(select(func.max(model.id)).scalar_subquery()  # type: ignore[attr-defined]
                                             for model in _COUNTED))).one()
        self._next: dict[type[db.Base], int] = {model: (top or 0) + 1
                                                for model, top in zip(_COUNTED, tops, strict=True)}

    def share_ids(self, allocate: Allocate) -> None:
        """Take ids from ``allocate`` (the workers' sequences) from now on."""
        self.allocate = allocate

    def next_id(self, model: type[db.Base]) -> int:
        """The next free id of ``model``'s table."""
        if self.allocate is not None:
            return self.allocate(self.session, model.__tablename__)
        value = self._next[model]
        self._next[model] = value + 1
        return value

    def track(self) -> None:
        """Record the rows each flush writes from now on (:attr:`changes`)."""
        if not self.track_changes:
            self.track_changes = True
            event.listen(self.session, "before_flush", self._record)

    def _record(self, session: Session, _context: Any, _instances: Any) -> None:
        written = [*session.new, *session.deleted, *(row for row in session.dirty if session.is_modified(row))]
        for row in written:
            table = row.__table__.name
            if table not in _UNRECORDED:
                self.changes[(table, row_key(row))] = changed_instance(row)

    def take_changes(self) -> Changes:
        """The rows written since the last call (flush first to include pending ones)."""
        taken, self.changes = self.changes, {}
        return taken

    def add(self, row: db.Base) -> None:
        self.session.add(row)

    def delete(self, row: db.Base) -> None:
        """Delete a row; one added since the last flush is simply forgotten."""
        if inspect(row).pending:
            self.session.expunge(row)
        else:
            self.session.delete(row)

    def all(self, model: type[T], *where: Any) -> list[T]:
        """Every row of ``model`` matching ``where``, in id order (deterministic on every backend)."""
        order = model.id if hasattr(model, "id") else model.instance_uuid  # type: ignore[attr-defined]
        return list(self.session.scalars(select(model).where(*where).order_by(order)))

    def query(self, statement: Any) -> list[Any]:
        """The rows of a query that sees this transaction's changes too (pending ones are flushed first)."""
        self.session.flush()
        return list(self.session.scalars(statement))

    def count(self, statement: Any) -> int:
        """The value of a ``count()`` query, pending changes included."""
        self.session.flush()
        return int(self.session.scalar(statement) or 0)

    def commit(self) -> None:
        self.session.commit()

    def close(self) -> None:
        self.session.close()


def row_key(row: db.Base) -> str:
    """A row's primary key as text (every compute table has a one-column key)."""
    return str(inspect(row).mapper.primary_key_from_instance(row)[0])


def changed_instance(row: db.Base) -> str | None:
    """The instance whose in-memory state (claims, volumes, network, migrations) a changed row feeds."""
    if isinstance(row, db.Instance):
        return row.uuid
    value = getattr(row, "instance_uuid", None)
    return value if isinstance(value, str) else None
