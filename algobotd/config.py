"""TOML -> typed, validated config.

Every error names the key path, e.g. ``risk.max_position_pct: must be between 0 and 1, got 1.5``.
Sections are dataclasses; a field's ``metadata["check"]`` validates its value. Unknown keys,
wrong types and out-of-range values all raise :class:`ConfigError`; the CLI prints it as one
line and exits with status 78 (EX_CONFIG).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EX_CONFIG = 78
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


class ConfigError(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# --- value checks ---------------------------------------------------------------------------

Check = Callable[[Any], str | None]  # returns an error message or None


def between(lo: float, hi: float) -> Check:
    return lambda v: None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}, got {v!r}"


def positive(v: float) -> str | None:
    return None if v > 0 else f"must be > 0, got {v!r}"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else f"must be >= 0, got {v!r}"


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(map(repr, choices))}, got {v!r}"


def speed_check(v: Any) -> str | None:
    if isinstance(v, str):
        return None if v in ("max", "realtime") else f"must be \"max\", \"realtime\" or a number > 0, got {v!r}"
    return None if v > 0 else f"must be \"max\", \"realtime\" or a number > 0, got {v!r}"


def symbols_check(v: list[str]) -> str | None:
    for s in v:
        if not s or not s.replace(".", "").replace("-", "").isalnum() or s.upper() != s:
            return f"symbols must be upper-case tickers, got {s!r}"
    return None if len(set(v)) == len(v) else "symbols must not repeat"


def opt(default: Any, check: Check | None = None, doc: str = "") -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"check": check, "doc": doc})
    return field(default=default, metadata={"check": check, "doc": doc})


# --- sections -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateConfig:
    dir: str = opt("state", doc="DuckDB file, models, socket when not under systemd")


@dataclass(frozen=True)
class SimConfig:
    symbols: int = opt(20, between(1, 5000))
    seed: int = opt(42)
    speed: float | str = opt(60.0, speed_check)
    start: str = opt("2024-01-02", doc="first simulated trading day (YYYY-MM-DD)")
    news_rate: float = opt(0.002, between(0, 1), doc="probability of a news item per symbol-bar")
    flow: bool = opt(True, doc="emit synthetic intrabar flow (OFI, tick-rule volume) and option snapshots")


@dataclass(frozen=True)
class ReplayConfig:
    path: str = opt("", doc="DuckDB file (its bars table), CSV or Parquet with symbol,ts,open,high,low,close,volume")
    speed: float | str = opt("max", speed_check)


@dataclass(frozen=True)
class FeedConfig:
    kind: str = opt("sim", one_of("sim", "replay", "alpaca", "ib"))
    symbols: list[str] = opt([], symbols_check)
    bar_seconds: int = opt(60, between(1, 86_400))
    grace_seconds: float = opt(2.0, non_negative, doc="BarClock waits this long for late symbols")
    warmup_bars: int = opt(120, between(0, 100_000), doc="history fed to features/models before trading")
    sim: SimConfig = field(default_factory=SimConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)


@dataclass(frozen=True)
class PaperConfig:
    initial_cash: float = opt(1_000_000.0, positive)
    slippage_bps: float = opt(1.0, between(0, 1000))
    participation: float = opt(0.1, between(0.0001, 1), doc="max share of a bar's volume one order may fill")
    commission: str = opt("ib", one_of("ib", "alpaca", "none"))


@dataclass(frozen=True)
class BrokerConfig:
    kind: str = opt("paper", one_of("paper", "alpaca", "ib"))
    paper: PaperConfig = field(default_factory=PaperConfig)
    position_tolerance: int = opt(0, between(0, 10**9), doc="reconciliation: shares a position may differ without escalating")
    on_mismatch: str = opt("REDUCING", one_of("REDUCING", "HALTED"), doc="reconciliation: state when beyond tolerance")
    fills_lookback_hours: float = opt(24.0, positive, doc="reconciliation: how far back broker fills are fetched")


@dataclass(frozen=True)
class AlpacaConfig:
    paper: bool = opt(True)
    data_feed: str = opt("iex", one_of("iex", "sip"))
    credentials_file: str = opt("", doc="0600 KEY=VALUE file with APCA_API_KEY_ID / APCA_API_SECRET_KEY (env wins)")
    rest_url: str = opt("")
    data_url: str = opt("")
    data_stream_url: str = opt("")
    trading_stream_url: str = opt("")
    reconnect_initial_seconds: float = opt(1.0, positive, doc="first websocket reconnect delay (doubles, with jitter)")
    reconnect_max_seconds: float = opt(30.0, positive, doc="cap on the websocket reconnect delay")
    ping_timeout_seconds: float = opt(20.0, positive, doc="a websocket without a pong this long is dead")


@dataclass(frozen=True)
class IBConfig:
    host: str = opt("127.0.0.1")
    port: int = opt(4002, between(1, 65535))
    client_id: int = opt(17, between(0, 2**31 - 1))
    account: str = opt("")
    data_client_id: int = opt(-1, between(-1, 2**31 - 1), doc="client id of the market-data connection; -1: client_id + 1")
    timeout_seconds: float = opt(10.0, between(0.1, 600), doc="connect / start-up sync timeout")
    reconnect_initial_seconds: float = opt(1.0, between(0.001, 3600), doc="first reconnect delay (doubles, jittered)")
    reconnect_max_seconds: float = opt(60.0, between(0.001, 3600), doc="longest reconnect delay")
    commission_wait_seconds: float = opt(2.0, between(0, 60), doc="a fill waits this long for its commission report")
    history_timeout_seconds: float = opt(60.0, between(0.1, 3600), doc="one historical request; empty on timeout is an error")
    what_to_show: str = opt("TRADES", one_of("TRADES", "MIDPOINT", "BID", "ASK"), doc="real-time and historical bar source")
    use_rth: bool = opt(False, doc="true: bars from regular trading hours only")


@dataclass(frozen=True)
class ControlConfig:
    socket: str = opt("")
    group: str = opt("", doc="if set, the socket is mode 0660 and owned by this group")
    allow_uids: list[int] = opt([])
    allow_groups: list[str] = opt([])


@dataclass(frozen=True)
class ModelConfig:
    kind: str = opt("baseline", one_of("baseline", "sma_cross", "ensemble"))
    lookback: int = opt(30, between(2, 10_000), doc="baseline: momentum window in bars")
    vol_window: int = opt(60, between(2, 10_000), doc="baseline: volatility window in bars")
    entry_z: float = opt(2.0, non_negative, doc="baseline: enter long when the momentum z-score exceeds this")
    exit_z: float = opt(-0.5, doc="baseline: exit when the z-score falls below this")
    fast: int = opt(10, between(1, 10_000), doc="sma_cross: fast window")
    slow: int = opt(30, between(2, 10_000), doc="sma_cross: slow window")
    # ensemble (algobotd/models/): labels, base models, stacking, adaptive weights, training
    models: str = opt("lightgbm,random_forest,hist_gbm,xgboost,catboost,lstm,transformer,cnn,attention",
                      doc="ensemble: comma-separated base models (xgboost, catboost: boost extra, else skipped)")
    label: str = opt("return", one_of("return", "triple_barrier"), doc="ensemble: label kind")
    horizon: int = opt(5, between(1, 10_000), doc="ensemble: label horizon in bars (also the purge)")
    cs_zscore: bool = opt(False, doc="ensemble: z-score labels across symbols per bar")
    label_vol_span: int = opt(60, between(2, 100_000), doc="ensemble: EWMA span of the label's volatility")
    pt_mult: float = opt(2.0, positive, doc="ensemble: triple-barrier profit-take, x EWMA vol")
    sl_mult: float = opt(2.0, positive, doc="ensemble: triple-barrier stop-loss, x EWMA vol")
    folds: int = opt(4, between(2, 100), doc="ensemble: purged walk-forward folds")
    embargo: int = opt(5, between(0, 100_000), doc="ensemble: bars between a label end and a test window")
    meta_alpha: float = opt(10.0, positive, doc="ensemble: ridge penalty of the stacking meta-learner")
    ic_halflife: float = opt(20.0, positive, doc="ensemble: half-life (bars) of the recent-IC weights")
    adaptive_mix: float = opt(0.5, between(0, 1), doc="ensemble: share of the adaptive IC weights vs the meta")
    gbm_rounds: int = opt(100, between(1, 100_000), doc="ensemble: boosting rounds (RF: rounds / 3 trees)")
    seq_len: int = opt(20, between(2, 10_000), doc="ensemble: steps of the sequence buffer the deep models use")
    hidden: int = opt(32, between(2, 4096), doc="ensemble: deep model width")
    epochs: int = opt(20, between(1, 10_000), doc="ensemble: max epochs (early stopping on validation)")
    device: str = opt("auto", one_of("auto", "cpu", "cuda", "mps"), doc="ensemble: torch device")
    threads: int = opt(1, between(1, 256), doc="ensemble: threads per training process (torch, LightGBM)")
    train_seed: int = opt(0, doc="ensemble: seed of every model")
    entry: float = opt(1.0, non_negative, doc="ensemble: enter above this score (units of OOS score sd)")
    exit: float = opt(0.0, doc="ensemble: exit below this score")
    train_on_start: bool = opt(True, doc="ensemble: no champion -> train on warm-up history in the background")
    min_train_bars: int = opt(400, between(50, 10_000_000), doc="ensemble: history needed to train on start")
    reload_check_bars: int = opt(1, between(1, 1_000_000), doc="ensemble: batches between champion checks")
    meta: str = opt("ridge", one_of("ridge", "lightgbm"), doc="ensemble: stacking meta-learner")
    stateful: bool = opt(True, doc="ensemble: LSTM/attention/CNN step once per batch on a kept state")
    rewarm_bars: int = opt(0, between(0, 1_000_000), doc="ensemble: re-run each state from its window every N batches; 0 = never")
    start_epochs: int = opt(3, between(1, 10_000), doc="ensemble: deep-model epochs of the first training on start")
    start_gbm_rounds: int = opt(50, between(1, 100_000), doc="ensemble: boosting rounds of the first training on start")


@dataclass(frozen=True)
class RiskConfig:
    max_position_pct: float = opt(0.10, between(0, 1), doc="cap on the value of one position, share of equity")
    max_gross_pct: float = opt(1.0, between(0, 10), doc="cap on gross exposure, share of equity")
    min_order_value: float = opt(100.0, non_negative)
    allow_short: bool = opt(False)
    # sizing: fractional Kelly from each symbol's round trips, shrunk toward a prior
    kelly_fraction: float = opt(0.25, between(0, 1), doc="share of full Kelly used")
    prior_win_rate: float = opt(0.55, between(0, 1), doc="Kelly prior: win rate")
    prior_avg_win: float = opt(0.02, positive, doc="Kelly prior: average winning round-trip return")
    prior_avg_loss: float = opt(0.015, positive, doc="Kelly prior: average losing round-trip return (magnitude)")
    prior_trades: float = opt(20.0, non_negative, doc="Kelly prior: weight of the prior, in round trips")
    vol_halflife_bars: float = opt(60.0, positive, doc="EWMA half-life of the volatility estimates")
    vol_min_bars: int = opt(20, between(2, 100_000), doc="returns needed before a symbol can be sized")
    vol_ratio_min: float = opt(0.5, positive, doc="clip of market vol / symbol vol")
    vol_ratio_max: float = opt(2.0, positive)
    market_ref: str = opt("", doc="reference series (BarBatch.refs, e.g. SPY) for market vol; empty: equal-weight universe")
    risk_budget_pct: float = opt(0.15, positive, doc="cap on sum(|value| x annual vol) / equity (fully correlated)")
    # stops, from the average entry cost, checked on every price update
    soft_stop_pct: float = opt(0.05, between(0, 1), doc="loss that reduces a position (once per position)")
    soft_stop_reduce: float = opt(0.5, between(0, 1), doc="share of the position sold at the soft stop")
    hard_stop_pct: float = opt(0.08, between(0, 1), doc="loss that exits a position")
    halt_position_loss_pct: float = opt(0.15, between(0, 1), doc="loss of one position that halts all trading")
    trailing_stop_pct: float = opt(0.0, between(0, 1), doc="exit after this fall from the best price; 0 = off")
    # portfolio breakers
    daily_loss_pct: float = opt(0.03, between(0, 1), doc="equity (open P&L included) below the day's start: HALT")
    max_drawdown_pct: float = opt(0.10, between(0, 1), doc="equity below its high-water mark: HALT")
    stale_data_seconds: float = opt(180.0, positive, doc="no market data this long beyond one bar + grace, in market hours: REDUCING")
    reject_window_seconds: float = opt(300.0, positive, doc="window of the order reject/error rate")
    max_reject_rate: float = opt(0.5, between(0, 1), doc="reject share in the window that HALTs")
    reject_min_orders: int = opt(5, between(1, 1_000_000), doc="orders in the window before the rate counts")
    # pre-trade checks, applied to every order from any source
    max_order_value: float = opt(250_000.0, positive, doc="USD notional cap per order, every account type")
    orders_per_second: float = opt(20.0, positive, doc="token bucket refill rate (and burst)")
    orders_per_minute: float = opt(300.0, positive, doc="token bucket refill per minute (and burst)")
    price_band_pct: float = opt(0.05, between(0, 1), doc="limit price within this of the last trade")
    quote_max_age_seconds: float = opt(120.0, positive, doc="market orders need a quote at most this old")
    restricted_symbols: list[str] = opt([], symbols_check, doc="known but not tradable")


@dataclass(frozen=True)
class StoreConfig:
    flush_seconds: float = opt(0.5, positive, doc="writer flushes at least this often")
    flush_rows: int = opt(5000, between(1, 10_000_000), doc="... or when this many rows are queued")


@dataclass(frozen=True)
class LoggingConfig:
    level: str = opt("info", one_of("debug", "info", "warning", "error"))
    format: str = opt("auto", one_of("auto", "json", "console"))


# --- operations (issue 8): schedule, alerts, model monitoring ---------------------------------

ALERT_LEVELS = ("info", "warning", "error", "critical")


@dataclass(frozen=True)
class ScheduleConfig:
    calendar: str = opt("XNYS", doc="exchange_calendars name of the market calendar")
    gate_entries: str = opt("auto", one_of("auto", "on", "off"),
                            doc="block new entries outside the session: auto = live feeds only")
    entries_outside_session: bool = opt(False, doc="true: allow new entries outside the regular session")
    warmup_minutes_before_open: float = opt(15.0, between(0, 600), doc="pre-open warm-up job")
    retrain_minutes_after_close: float = opt(30.0, between(0, 720), doc="nightly retrain job, session days only")
    reconcile_seconds: float = opt(300.0, between(5, 86_400), doc="periodic broker reconciliation")
    monitor_seconds: float = opt(60.0, between(1, 86_400), doc="periodic model monitoring")
    status_seconds: float = opt(5.0, between(0.5, 3600), doc="systemd STATUS= line refresh")


@dataclass(frozen=True)
class AlertChannelConfig:
    name: str = opt("", doc="what routes refer to")
    kind: str = opt("webhook", one_of("webhook", "email", "sms"))
    format: str = opt("generic", one_of("generic", "slack", "discord"), doc="webhook body")
    url: str = opt("", doc="webhook / SMS provider endpoint")
    url_env: str = opt("", doc="environment variable holding the URL (Slack/Discord URLs are secrets)")
    auth_env: str = opt("", doc="environment variable holding an Authorization header value")
    body_template: str = opt("", doc="sms: request body with $text $to $kind $level placeholders")
    content_type: str = opt("application/json", one_of("application/json", "application/x-www-form-urlencoded"))
    smtp_host: str = opt("")
    smtp_port: int = opt(587, between(1, 65535))
    starttls: bool = opt(True, doc="STARTTLS on a plain connection (port 465 always uses implicit TLS)")
    smtp_ca_file: str = opt("", doc="CA bundle for a private SMTP server certificate")
    username: str = opt("")
    password_env: str = opt("", doc="environment variable holding the SMTP password")
    sender: str = opt("")
    to: list[str] = opt([])


@dataclass(frozen=True)
class AlertRouteConfig:
    kinds: list[str] = opt([], doc="event kinds (fill, state, breaker, reject, ...); empty = any")
    min_level: str = opt("info", one_of(*ALERT_LEVELS))
    min_confidence: float = opt(0.0, between(0, 1), doc="only alerts whose payload confidence is at least this")
    channels: list[str] = opt([])


@dataclass(frozen=True)
class AlertsConfig:
    enabled: bool = opt(True)
    from_events: bool = opt(True, doc="turn engine events (fills, state changes, rejects) into alerts")
    poll_seconds: float = opt(1.0, between(0.05, 3600))
    timeout_seconds: float = opt(10.0, between(0.1, 600))
    retry_base_seconds: float = opt(5.0, between(0.01, 3600))
    retry_max_seconds: float = opt(600.0, between(0.01, 86_400))
    expire_seconds: float = opt(86_400.0, between(1, 30 * 86_400), doc="undelivered alerts older than this expire")
    dedup_seconds: float = opt(300.0, between(0, 86_400), doc="the same kind+level+message again within this is dropped")
    channels: list[AlertChannelConfig] = opt([])
    routes: list[AlertRouteConfig] = opt([])


@dataclass(frozen=True)
class MonitorConfig:
    enabled: bool = opt(True)
    horizon_bars: int = opt(1, between(1, 10_000), doc="bars after a prediction at which its return is measured")
    window_predictions: int = opt(500, between(10, 10_000_000), doc="predictions per evaluation window")
    history_windows: int = opt(30, between(3, 1000), doc="past windows the degradation rule compares against")
    sigma: float = opt(2.0, positive, doc="degraded: IC below mean - sigma * std of past windows")
    psi_threshold: float = opt(0.25, positive, doc="feature drift beyond this PSI triggers retraining")
    psi_bins: int = opt(10, between(2, 100))
    retrain_cooldown_seconds: float = opt(3600.0, non_negative, doc="at most one triggered retrain per cooldown")


def sector_pairs_check(v: list[str]) -> str | None:
    for item in v:
        sym, eq, sec = item.partition("=")
        if not eq or not sym or not sec:
            return f"entries must look like \"SYMBOL=SECTOR_SERIES\", got {item!r}"
    return None


@dataclass(frozen=True)
class FeaturesConfig:
    disabled_families: list[str] = opt([], doc="price_volume | microstructure | cross_asset | alternative")
    disabled: list[str] = opt([], doc="single feature names to switch off (see: algobotd features)")
    index: str = opt("SPY", doc="reference series used as the market index (beta, sector rotation)")
    vol_index: str = opt("VIX", doc="volatility index series; empty: only realised index volatility")
    curve_long: str = opt("", doc="long rate (or long bond ETF) series for the yield-curve features")
    curve_short: str = opt("", doc="short rate (or short bond ETF) series")
    curve_kind: str = opt("rate", one_of("rate", "price"), doc="rate: long - short; price: log(long / short)")
    dollar: str = opt("", doc="dollar index / ETF series for the dollar-strength features")
    sectors: list[str] = opt([], sector_pairs_check, doc="\"SYMBOL=SECTOR_SERIES\" pairs")
    news_half_life_seconds: float = opt(1800.0, positive, doc="decay half-life of the news features")
    sequence_length: int = opt(60, between(1, 10_000), doc="feature vectors kept per symbol for sequence models")
    refresh_bars: int = opt(512, between(1, 1_000_000), doc="batches between exact recomputations of rolling sums")


@dataclass(frozen=True)
class AltDataConfig:
    """Alternative data (issue 10, algobotd/altdata/): news, social, options flow, Form 4."""

    enabled: bool = opt(True, doc="attach alternative-data events to the bar batches")
    scorer: str = opt("lexicon", one_of("lexicon", "transformer"), doc="sentiment scorer")
    transformer_path: str = opt("", doc="local checkpoint directory for scorer = \"transformer\" (never downloaded)")
    headline_weight: float = opt(0.7, between(0, 1), doc="weight of the headline vs the summary in a score")
    news: bool = opt(True, doc="broker news (Alpaca NewsClient + NewsDataStream, IB news ticks) when the feed has it")
    news_history_hours: float = opt(24.0, between(0, 24 * 30), doc="news fetched at start-up for warm-up")
    news_stream_url: str = opt("", doc="Alpaca news websocket override (tests, proxies); empty: alpaca-py default")
    ib_news_providers: str = opt("", doc="IB news provider codes, e.g. \"BRFG+DJNL\"; empty: IB news off")
    social_dir: str = opt("", doc="JSON-lines drop directory; empty: <state.dir>/social")
    social_poll_seconds: float = opt(2.0, between(0.05, 3600), doc="drop directory scan interval")
    options: bool = opt(False, doc="poll option chains (Alpaca get_option_chain / IB reqSecDefOptParams)")
    options_poll_seconds: float = opt(300.0, between(1, 86_400), doc="seconds between polls of one underlying")
    options_requests_per_minute: int = opt(60, between(1, 10_000), doc="cap on chain requests (broker rate limit)")
    form4: bool = opt(False, doc="fetch SEC Form 4 filings from EDGAR (needs internet and form4_user_agent)")
    form4_user_agent: str = opt("", doc="EDGAR requires \"Name email@example.com\"")
    form4_poll_seconds: float = opt(3600.0, between(60, 86_400))
    retry_seconds: float = opt(30.0, between(0.01, 3600), doc="a failed source is retried after this long")


@dataclass(frozen=True)
class ValidateConfig:
    """mc / walkforward / tune (issue 9); command-line flags win over these."""

    workers: int = opt(0, between(0, 1024), doc="worker processes; 0 = one per CPU")
    ray_address: str = opt("", doc="Ray cluster address; empty = local process pool, \"local\" = start Ray here")
    mc_paths: int = opt(10_000, between(1, 100_000_000), doc="Monte Carlo paths per scenario")
    mc_symbols: int = opt(20, between(1, 5000), doc="symbols per Monte Carlo path")
    mc_bars: int = opt(252, between(2, 1_000_000), doc="daily bars per Monte Carlo path (after warm-up)")


@dataclass(frozen=True)
class Config:
    state: StateConfig = field(default_factory=StateConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    alpaca: AlpacaConfig = field(default_factory=AlpacaConfig)
    ib: IBConfig = field(default_factory=IBConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    altdata: AltDataConfig = field(default_factory=AltDataConfig)

    @property
    def state_dir(self) -> Path:
        return Path(self.state.dir)

    def cross_check(self) -> None:
        """Rules that involve more than one key."""
        if self.model.kind == "sma_cross" and self.model.fast >= self.model.slow:
            raise ConfigError("model.fast", f"must be smaller than model.slow ({self.model.slow}), got {self.model.fast}")
        if self.feed.kind == "replay" and not self.feed.replay.path:
            raise ConfigError("feed.replay.path", "required when feed.kind = \"replay\"")
        check_alerts(self.alerts)
        r = self.risk
        if not r.soft_stop_pct < r.hard_stop_pct < r.halt_position_loss_pct:
            raise ConfigError("risk.hard_stop_pct", "stops must satisfy soft_stop_pct < hard_stop_pct < "
                              f"halt_position_loss_pct, got {r.soft_stop_pct} / {r.hard_stop_pct} / {r.halt_position_loss_pct}")
        if r.vol_ratio_min > r.vol_ratio_max:
            raise ConfigError("risk.vol_ratio_min", f"must be <= risk.vol_ratio_max ({r.vol_ratio_max}), got {r.vol_ratio_min}")


def check_alerts(cfg: AlertsConfig) -> None:
    """Channel names unique, each channel has what its kind needs, routes name real channels."""
    names: set[str] = set()
    for i, ch in enumerate(cfg.channels):
        where = f"alerts.channels[{i}]"
        if not ch.name:
            raise ConfigError(f"{where}.name", "required")
        if ch.name in names:
            raise ConfigError(f"{where}.name", f"duplicate channel name {ch.name!r}")
        names.add(ch.name)
        if ch.kind in ("webhook", "sms") and not (ch.url or ch.url_env):
            raise ConfigError(f"{where}.url", f"a {ch.kind} channel needs url or url_env")
        if ch.kind == "sms" and not ch.body_template:
            raise ConfigError(f"{where}.body_template", "required for an sms channel")
        if ch.kind == "email":
            for key in ("smtp_host", "sender"):
                if not getattr(ch, key):
                    raise ConfigError(f"{where}.{key}", "required for an email channel")
            if not ch.to:
                raise ConfigError(f"{where}.to", "an email channel needs at least one recipient")
    for i, route in enumerate(cfg.routes):
        for name in route.channels:
            if name not in names:
                raise ConfigError(f"alerts.routes[{i}].channels", f"no channel named {name!r}")


# --- building typed objects from dicts ------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(path: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arm in typing.get_args(tp):
            try:
                return _coerce(path, arm, value)
            except ConfigError as exc:
                errors.append(exc.message)
        names = " or ".join(_type_name(a) for a in typing.get_args(tp))
        raise ConfigError(path, f"expected {names}, got {type(value).__name__} {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {type(value).__name__} {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(f"{path}[{i}]", item_tp, v) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table, got {type(value).__name__} {value!r}")
        return build(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(path, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            where = f"{prefix}.{key}" if prefix else key
            known = ", ".join(sorted(fields))
            raise ConfigError(where, f"unknown key (known keys here: {known})")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        path = f"{prefix}.{name}" if prefix else name
        value = _coerce(path, hints[name], data[name])
        check = f.metadata.get("check")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(path, problem)
        kwargs[name] = value
    return cls(**kwargs)


def _parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value``; the value is parsed as TOML, falling back to a bare string."""
    if "=" not in text:
        raise ConfigError(text, "override must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(key or text, "override must look like section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def _merge(base: dict[str, Any], keys: list[str], value: Any) -> None:
    node = base
    for i, k in enumerate(keys[:-1]):
        child = node.setdefault(k, {})
        if not isinstance(child, dict):
            raise ConfigError(".".join(keys[: i + 1]), "is not a table")
        node = child
    node[keys[-1]] = value


def load(
    path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
    state_dir: str | None = None,
) -> Config:
    # ALGOBOT_CONFIG replaces the default file (the test suite points it at a baseline-model copy)
    cfg_path = Path(path) if path else Path(os.environ.get("ALGOBOT_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(cfg_path), "config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(cfg_path), f"invalid TOML: {exc}") from None
    for item in overrides:
        keys, value = _parse_override(item)
        _merge(raw, keys, value)
    if state_dir is not None:
        _merge(raw, ["state", "dir"], state_dir)
    cfg = build(Config, raw)
    cfg.cross_check()
    return cfg


def dump(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


# --- secrets --------------------------------------------------------------------------------


def load_credentials(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a ``KEY=VALUE`` credentials file; refuses one that others can read."""
    p = Path(path)
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(str(p), f"credentials file must be mode 0600, is {mode:04o}")
    creds = {}
    for n, line in enumerate(p.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"{p}:{n}", "expected KEY=VALUE")
        k, v = line.split("=", 1)
        creds[k.strip()] = v.strip()
    return creds
