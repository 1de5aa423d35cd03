"""Where the control socket lives. One rule, used by the daemon, ``algobotd ctl`` and the TUI,
so a client never looks somewhere the daemon did not bind."""

from __future__ import annotations

import os
from pathlib import Path

from algobotd import config as config_mod

SYSTEMD_NAME = "ctl.sock"
STATE_DIR_NAME = "algobotd.sock"


def socket_path(config_socket: str, state_dir: Path) -> Path:
    """``control.socket`` if set; else ``$RUNTIME_DIRECTORY/ctl.sock`` under systemd
    (``RuntimeDirectory=`` gives a private 0755 dir that is cleaned on stop); else
    ``<state_dir>/algobotd.sock``."""
    if config_socket:
        return Path(config_socket).expanduser()
    runtime = os.environ.get("RUNTIME_DIRECTORY", "")
    if runtime:
        # systemd may pass several colon-separated dirs when several are configured
        return Path(runtime.split(":")[0]) / SYSTEMD_NAME
    return Path(state_dir) / STATE_DIR_NAME


def resolve_client_socket(
    socket: str | None, config_path: str | None, state_dir: str | None
) -> Path:
    """The socket a client (CLI, TUI) should connect to.

    ``--socket`` wins. Otherwise the config decides, exactly as for the daemon. When no
    ``--config`` was given and the default config file is missing, the built-in defaults are
    used (a client must not fail just because it runs outside the checkout).
    Raises ``ConfigError`` for an explicit config that is missing or invalid.
    """
    if socket:
        return Path(socket).expanduser()
    if config_path is None and not config_mod.DEFAULT_CONFIG.exists():
        cfg = config_mod.Config()
        ctl_socket = cfg.control.socket
        sdir = Path(state_dir) if state_dir is not None else cfg.state_dir
        return socket_path(ctl_socket, sdir)
    cfg = config_mod.load(config_path, state_dir=state_dir)
    return socket_path(cfg.control.socket, cfg.state_dir)
