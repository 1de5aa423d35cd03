"""The single writer that owns the DuckDB connection.

The hot path only appends rows to in-memory buffers (``add``/``add_columns``/``update_order``).
Buffers are flushed as one transaction per flush on a dedicated thread (DuckDB releases
the GIL, so inserts overlap with the engine; it takes the GIL back between execution tasks,
so a busy engine thread must hand it over quickly: see ``backtest.BACKTEST_SWITCH_INTERVAL``),
either when ``flush_rows`` rows are queued, every ``flush_seconds`` (live), or when the
engine asks for a durability barrier (``await flush()``) before sending new orders to the broker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import structlog

from algobotd.store.rows import (
    _ORDER_UPDATE_COLUMNS,
    _Block,
    _fold_order_updates,
    _merge_blocks,
    _tuple_columns,
    _with_update,
)
from algobotd.store.schema import COLUMNS, KEYED_TABLES, migrate
from algobotd.symbols import SymbolIndex

log = structlog.get_logger(__name__)

BACKLOG_FLUSHES = 2
_COLUMN_SETS = {table: frozenset(names) for table, names in COLUMNS.items()}
_WIDTHS = {table: len(names) for table, names in COLUMNS.items()}


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (and for writers migrate) a store file."""
    p = Path(path)
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(p), read_only=read_only)
    if not read_only:
        migrate(con)
    return con


class StoreWriter:
    def __init__(
        self,
        path: str | Path,
        *,
        flush_seconds: float = 0.5,
        flush_rows: int = 5000,
        durable: bool = True,
    ) -> None:
        self.path = Path(path)
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        # durable=False (backtests, Monte Carlo): the result file is not a venue of record,
        # so the order barrier does not wait for the disk. Same code path otherwise.
        self.durable = durable
        self.con = connect(self.path)
        if not durable:
            # a backtest's writer shares the machine with the engine thread: DuckDB's own worker
            # threads only compete with it for the core (inserts need no parallel plan; the rows
            # are the same). A larger checkpoint_threshold was tried: +30 MiB peak, no clear gain.
            self.con.execute("SET threads = 1")
        self._rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self._cols: dict[str, list[_Block]] = defaultdict(list)
        # names behind integer ``symbol`` columns: the engine's index (it only ever appends)
        self.symbol_index: SymbolIndex | None = None
        self._order_updates: dict[str, tuple[Any, ...]] = {}
        self._queued = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._inflight: asyncio.Future[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.rows_written = 0
        self.flushes = 0
        self.failures = 0

    # --- hot path: enqueue only ---------------------------------------------------------------

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        if len(row) != _WIDTHS.get(table, -1):  # fail here, not in a flush retried forever
            raise ValueError(f"{table}: row of {len(row)} fields, expected {list(COLUMNS.get(table, ()))}")
        self._rows[table].append(row)
        self._queued += 1

    def add_columns(self, table: str, columns: Mapping[str, np.ndarray], constants: Mapping[str, Any] | None = None) -> None:
        """Append a block of rows given as aligned numpy columns (timestamps as datetime64[ns]).

        ``constants``: columns with one value for the whole block (a batch's ``ts`` as int ns,
        a model id), so the hot path builds no per-row array for them. An integer ``symbol``
        column holds codes into ``symbol_index``.
        """
        constants = constants or {}
        if columns.keys() | constants.keys() != _COLUMN_SETS[table]:  # fail here, not in a retried flush
            raise ValueError(f"{table}: columns {sorted(columns.keys() | constants.keys())} != {list(COLUMNS[table])}")
        codes = columns.get("symbol")
        if codes is not None and codes.dtype.kind in "iu" and self.symbol_index is None:
            raise ValueError(f"{table}: symbol codes need StoreWriter.symbol_index")
        n = len(next(iter(columns.values())))
        self._cols[table].append(_Block(n, columns, constants))
        self._queued += n

    def update_order(self, row: tuple[Any, ...]) -> None:
        """Latest status of an order, in ``_ORDER_UPDATE_COLUMNS`` order; last one wins."""
        if len(row) != len(_ORDER_UPDATE_COLUMNS):
            raise ValueError(f"order update of {len(row)} fields, expected {list(_ORDER_UPDATE_COLUMNS)}")
        previous = self._order_updates.get(row[0])
        if previous is not None and not row[4] and previous[4]:
            row = (*row[:4], previous[4], *row[5:])  # keep the venue's id seen earlier in this flush
        self._order_updates[row[0]] = row
        self._queued += 1

    @property
    def queued(self) -> int:
        return self._queued

    def maybe_flush(self) -> None:
        """Start a background flush when enough rows are queued (never waits for the disk)."""
        if self._queued >= self.flush_rows and (self._inflight is None or self._inflight.done()):
            self._start_flush()

    async def keep_up(self) -> None:
        """Backpressure for runs that produce rows faster than the disk takes them (backtests):
        past ``BACKLOG_FLUSHES`` flushes' worth of queued rows, wait for the writer."""
        if self._queued >= BACKLOG_FLUSHES * self.flush_rows:
            await self.flush()

    # --- flushing -----------------------------------------------------------------------------

    def start(self) -> None:
        """Flush every ``flush_seconds`` from a task on the running loop (live mode)."""
        self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="store-ticker")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            if self._queued:
                try:
                    await self.flush()
                except Exception:  # the rows went back to the buffers; the next tick retries
                    log.error("store flush failed; retrying", queued=self._queued, failures=self.failures)

    def _take(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        rows, cols, upd = self._rows, self._cols, self._order_updates
        self._rows, self._cols, self._order_updates = defaultdict(list), defaultdict(list), {}
        self._queued = 0
        return rows, cols, upd

    def _start_flush(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        work = self._take()
        previous = self._inflight
        # one worker thread: flushes run in submission order; the symbol names are copied here,
        # on the loop thread, because the index may grow while the flush runs
        fut = loop.run_in_executor(self._executor, self._write, *work, self._symbol_names())
        fut.add_done_callback(lambda f: self._requeue_if_failed(f, work))
        self._inflight = fut
        if previous is not None and not previous.done():
            previous.add_done_callback(lambda f: f.exception())
        return fut

    def _symbol_names(self) -> tuple[str, ...]:
        return self.symbol_index.symbols if self.symbol_index is not None else ()

    def _requeue_if_failed(self, fut: asyncio.Future[None], work: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]) -> None:
        """A failed transaction loses nothing: its rows go back in front of the newer ones."""
        if fut.cancelled() or fut.exception() is None:
            return
        self.failures += 1
        rows, cols, updates = work
        for table, old_rows in rows.items():
            self._rows[table][:0] = old_rows
            self._queued += len(old_rows)
        for table, old_blocks in cols.items():
            self._cols[table][:0] = old_blocks
            self._queued += sum(b.n for b in old_blocks)
        for cid, row in updates.items():
            if cid not in self._order_updates:  # a newer status for the same order wins
                self._order_updates[cid] = row
                self._queued += 1

    async def flush(self) -> None:
        """Durability barrier: everything enqueued before this call is committed on return.

        Shielded: a caller cancelled mid-flush must not cancel the write itself.
        """
        if not self._queued:
            if self._inflight is not None:
                await asyncio.shield(self._inflight)
            return
        await asyncio.shield(self._start_flush())

    async def barrier(self) -> None:
        """Called before new orders go to the broker: their rows must be on disk first."""
        if self.durable:
            await self.flush()
        else:
            self.maybe_flush()

    def _write(self, rows: dict[str, list[tuple[Any, ...]]], cols: dict[str, list[_Block]],
               updates: dict[str, tuple[Any, ...]], symbol_names: Sequence[str] = ()) -> None:
        con = self.con
        n = 0
        # Orders created in this flush take their latest status in the INSERT itself: UPDATE is
        # by far the costliest statement per row, and in backtests most orders open and close
        # between two flushes. Should any of those rows be ignored (the id exists already), the
        # UPDATE still runs for all of them below, exactly as without this shortcut.
        new_orders = rows.get("orders")
        folded = _fold_order_updates(new_orders, updates) if new_orders and updates else {}
        if folded:
            rows = {**rows, "orders": [_with_update(r, folded[r[0]]) if r[0] in folded else r for r in new_orders]}
        con.execute("BEGIN TRANSACTION")
        try:
            for table in COLUMNS:
                blocks = list(cols.get(table, ()))
                table_rows = rows.get(table)
                if table_rows:
                    blocks.append(_Block(len(table_rows), _tuple_columns(COLUMNS[table], table_rows), {}))
                if blocks:  # one INSERT per table per flush: each statement costs ~1 ms
                    total = sum(b.n for b in blocks)
                    inserted = self._insert(con, table, (total, *_merge_blocks(table, blocks, symbol_names)))
                    n += inserted
                    if table == "orders" and folded and inserted == total:
                        updates = {cid: u for cid, u in updates.items() if cid not in folded}
            if updates:
                block = _tuple_columns(_ORDER_UPDATE_COLUMNS, list(updates.values()))
                con.register("order_update_block", block)
                con.execute(
                    """UPDATE orders SET status = u.status, filled_qty = u.filled_qty,
                       avg_fill_price = u.avg_fill_price,
                       broker_order_id = coalesce(nullif(u.broker_order_id, ''), orders.broker_order_id),
                       status_reason = u.status_reason, updated_at = u.updated_at
                       FROM order_update_block u WHERE orders.client_order_id = u.client_order_id"""
                )
                con.unregister("order_update_block")
                n += len(updates)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            log.exception("store flush failed", rows=n)
            raise
        self.rows_written += n
        self.flushes += 1

    @staticmethod
    def _insert(con: duckdb.DuckDBPyConnection, table: str, block: tuple[int, str, list[Any], dict[str, Any]]) -> int:
        """One INSERT of a merged block: (rows, SELECT list, parameters, relation) from ``_merge_blocks``."""
        rows, select, params, relation = block
        if not relation:  # every column a constant: the relation only supplies the row count
            relation = {"_row": np.zeros(rows, dtype=np.int8)}
        con.register("insert_block", relation)
        verb = "INSERT OR IGNORE" if table in KEYED_TABLES else "INSERT"
        result = con.execute(f"{verb} INTO {table} ({', '.join(COLUMNS[table])}) SELECT {select} FROM insert_block",
                             params).fetchone()
        con.unregister("insert_block")
        return int(result[0]) if result else rows  # rows inserted (keyed tables ignore known ids)

    async def run(self, fn: Any) -> Any:
        """Run ``fn(con)`` on the writer thread, after every flush started before it.

        For the few readers/updaters inside the daemon (alert outbox, model monitor): the one
        connection is never used from two threads, and the event loop never waits on DuckDB.
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self.con)

    async def close(self, attempts: int = 3) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self._inflight is not None:
            # one worker thread: waiting for the last flush waits for every earlier one
            await asyncio.gather(asyncio.shield(self._inflight), return_exceptions=True)
        for attempt in range(attempts):
            if not self._queued:
                break
            try:
                await self.flush()
            except Exception:
                await asyncio.sleep(0.2 * (attempt + 1))
        if self._queued:
            log.critical("store closed with rows it could not write", queued=self._queued, failures=self.failures)
        await asyncio.get_running_loop().run_in_executor(self._executor, self.con.close)
        self._executor.shutdown(wait=True)
