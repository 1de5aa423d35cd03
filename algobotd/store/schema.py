"""DuckDB schema as numbered migrations, recorded in ``schema_version``.

A migration is applied once, inside a transaction; adding a table or column means appending
a new entry to ``MIGRATIONS`` — never editing an applied one. Timestamps are TIMESTAMP (UTC).
Column order matters: the writer inserts whole rows in this order (see ``COLUMNS``).
"""

from __future__ import annotations

import duckdb

MIGRATIONS: list[str] = [
    # 1: the spine
    """
    CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, kind VARCHAR, started_at TIMESTAMP, ended_at TIMESTAMP,
        config VARCHAR, summary VARCHAR
    );
    CREATE TABLE bars (
        symbol VARCHAR, ts TIMESTAMP, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE,
        volume DOUBLE, bid DOUBLE, ask DOUBLE
    );
    CREATE TABLE models (
        model_id VARCHAR PRIMARY KEY, kind VARCHAR, created_at TIMESTAMP, params VARCHAR,
        metrics VARCHAR, path VARCHAR, champion BOOLEAN
    );
    CREATE TABLE predictions (
        ts TIMESTAMP, symbol VARCHAR, model_id VARCHAR, prediction DOUBLE, confidence DOUBLE,
        weights VARCHAR, actual_return DOUBLE
    );
    CREATE TABLE orders (
        client_order_id VARCHAR PRIMARY KEY, seq BIGINT, ts TIMESTAMP, symbol VARCHAR,
        side VARCHAR, qty BIGINT, type VARCHAR, limit_price DOUBLE, tif VARCHAR, reason VARCHAR,
        status VARCHAR, filled_qty BIGINT, avg_fill_price DOUBLE, broker_order_id VARCHAR,
        status_reason VARCHAR, updated_at TIMESTAMP
    );
    CREATE TABLE order_events (
        client_order_id VARCHAR, ts TIMESTAMP, status VARCHAR, filled_qty BIGINT,
        avg_fill_price DOUBLE, broker_order_id VARCHAR, reason VARCHAR
    );
    CREATE TABLE trades (
        exec_id VARCHAR PRIMARY KEY, client_order_id VARCHAR, symbol VARCHAR, side VARCHAR,
        qty BIGINT, price DOUBLE, commission DOUBLE, ts TIMESTAMP
    );
    CREATE TABLE positions (
        ts TIMESTAMP, symbol VARCHAR, qty BIGINT, avg_cost DOUBLE, last_price DOUBLE,
        realized_pnl DOUBLE
    );
    CREATE TABLE equity (
        ts TIMESTAMP, equity DOUBLE, cash DOUBLE, gross_exposure DOUBLE, net_exposure DOUBLE,
        realized_pnl DOUBLE, unrealized_pnl DOUBLE, commissions DOUBLE, high_water_mark DOUBLE,
        drawdown DOUBLE
    );
    CREATE TABLE risk_events (
        ts TIMESTAMP, kind VARCHAR, name VARCHAR, value DOUBLE, threshold DOUBLE,
        state VARCHAR, message VARCHAR
    );
    CREATE TABLE trading_state (
        ts TIMESTAMP, state VARCHAR, reason VARCHAR, actor VARCHAR
    );
    CREATE TABLE alerts (
        alert_id VARCHAR PRIMARY KEY, ts TIMESTAMP, kind VARCHAR, level VARCHAR,
        channel VARCHAR, payload VARCHAR, status VARCHAR, attempts INTEGER,
        next_attempt TIMESTAMP, sent_at TIMESTAMP
    );
    CREATE TABLE news (
        news_id VARCHAR PRIMARY KEY, ts TIMESTAMP, symbols VARCHAR, headline VARCHAR,
        summary VARCHAR, source VARCHAR, sentiment DOUBLE
    );
    """,
    # 2: risk (issue 5): the inputs of every sizing decision that became an order
    """
    CREATE TABLE sizing_decisions (
        client_order_id VARCHAR, ts TIMESTAMP, symbol VARCHAR, score DOUBLE, confidence DOUBLE,
        win_rate DOUBLE, payoff DOUBLE, kelly_full DOUBLE, kelly_fraction DOUBLE, vol_ratio DOUBLE,
        sigma_annual DOUBLE, weight DOUBLE, budget_scale DOUBLE, equity DOUBLE, price DOUBLE,
        held_qty BIGINT, target_qty BIGINT
    );
    """,
    # 3: alternative data (issue 10): the scorer behind each news score, option-chain flow
    """
    ALTER TABLE news ADD COLUMN scorer VARCHAR;
    CREATE TABLE options_flow (
        ts TIMESTAMP, symbol VARCHAR, call_volume DOUBLE, put_volume DOUBLE, call_oi DOUBLE,
        put_oi DOUBLE, pcr_volume DOUBLE, pcr_oi DOUBLE, atm_iv DOUBLE, iv_skew DOUBLE,
        gamma_exposure DOUBLE, unusual DOUBLE
    );
    """,
    # 4: broker account books (issue 7): cash that moved without a fill. ``kind = 'opening'``
    # sets the cash base (books adopted from a venue account: cash = amount + the fills' cash);
    # every other kind adds ``amount`` (deposit, withdrawal, fee, dividend ...: the venue's cash
    # differed from ours with every fill accounted for). ``venue_cash``: the venue's figure then.
    """
    CREATE TABLE cash_events (
        ts TIMESTAMP, account VARCHAR, kind VARCHAR, amount DOUBLE, venue_cash DOUBLE, note VARCHAR
    );
    """,
]

# Tables the writer appends to, with their column order; tables with a primary key are
# written with INSERT OR IGNORE so that a replayed row is never stored twice.
COLUMNS: dict[str, tuple[str, ...]] = {
    "bars": ("symbol", "ts", "open", "high", "low", "close", "volume", "bid", "ask"),
    "predictions": ("ts", "symbol", "model_id", "prediction", "confidence", "weights", "actual_return"),
    "orders": (
        "client_order_id", "seq", "ts", "symbol", "side", "qty", "type", "limit_price", "tif",
        "reason", "status", "filled_qty", "avg_fill_price", "broker_order_id", "status_reason",
        "updated_at",
    ),
    "order_events": ("client_order_id", "ts", "status", "filled_qty", "avg_fill_price", "broker_order_id", "reason"),
    "trades": ("exec_id", "client_order_id", "symbol", "side", "qty", "price", "commission", "ts"),
    "positions": ("ts", "symbol", "qty", "avg_cost", "last_price", "realized_pnl"),
    "equity": (
        "ts", "equity", "cash", "gross_exposure", "net_exposure", "realized_pnl",
        "unrealized_pnl", "commissions", "high_water_mark", "drawdown",
    ),
    "risk_events": ("ts", "kind", "name", "value", "threshold", "state", "message"),
    "trading_state": ("ts", "state", "reason", "actor"),
    "alerts": (
        "alert_id", "ts", "kind", "level", "channel", "payload", "status", "attempts",
        "next_attempt", "sent_at",
    ),
    "news": ("news_id", "ts", "symbols", "headline", "summary", "source", "sentiment", "scorer"),
    "options_flow": ("ts", "symbol", "call_volume", "put_volume", "call_oi", "put_oi", "pcr_volume", "pcr_oi",
                     "atm_iv", "iv_skew", "gamma_exposure", "unusual"),
    "models": ("model_id", "kind", "created_at", "params", "metrics", "path", "champion"),
    "runs": ("run_id", "kind", "started_at", "ended_at", "config", "summary"),
    "sizing_decisions": (
        "client_order_id", "ts", "symbol", "score", "confidence", "win_rate", "payoff", "kelly_full",
        "kelly_fraction", "vol_ratio", "sigma_annual", "weight", "budget_scale", "equity", "price",
        "held_qty", "target_qty",
    ),
    "cash_events": ("ts", "account", "kind", "amount", "venue_cash", "note"),
}
KEYED_TABLES = frozenset({"orders", "trades", "alerts", "news", "models", "runs"})


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
    )
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration newer than the file's version; returns the resulting version."""
    version = current_version(con)
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"store schema version {version} is newer than this algobotd ({len(MIGRATIONS)}): upgrade algobotd"
        )
    for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [number])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
