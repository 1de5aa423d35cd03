"""Who is on the other end of a control connection, and may they change the trading state?

Anyone who can open the socket (file mode decides that) may read. State-changing methods
need an authorized peer: the daemon's own uid, root, or a configured uid / group. Identity
comes from the kernel (SO_PEERCRED), never from anything the client says.
"""

from __future__ import annotations

import grp
import os
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from algobotd.control.target import ControlError


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int

    @property
    def actor(self) -> str:
        """How the audit trail names this peer."""
        return f"operator:uid={self.uid}"


UNKNOWN_PEER = Peer(pid=-1, uid=-1, gid=-1)

Authorizer = Callable[[Peer], bool]


def peer_credentials(sock: socket.socket | None) -> Peer:
    """SO_PEERCRED of a connected Unix socket; UNKNOWN_PEER where the platform lacks it
    (an unknown peer is never authorized, so this fails closed)."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if sock is None or opt is None:
        return UNKNOWN_PEER
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    except OSError:
        return UNKNOWN_PEER
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


def resolve_gid(group: str | int) -> int:
    if isinstance(group, int):
        return group
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ControlError("unknown_group", f"control group {group!r} does not exist") from None


def _supplementary_gids(pid: int) -> set[int]:
    """The peer's supplementary groups (SO_PEERCRED only carries the primary gid)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Groups:"):
                    return {int(g) for g in line.split()[1:]}
    except (OSError, ValueError):
        pass
    return set()


class PeerPolicy:
    """The default authorizer: daemon uid, root, ``allow_uids``, members of ``allow_groups``."""

    def __init__(
        self,
        daemon_uid: int | None = None,
        allow_uids: Iterable[int] = (),
        allow_groups: Iterable[str | int] = (),
    ) -> None:
        self.daemon_uid = os.geteuid() if daemon_uid is None else daemon_uid
        self.uids = {self.daemon_uid, 0, *allow_uids}
        self.gids = {resolve_gid(g) for g in allow_groups}

    def __call__(self, peer: Peer) -> bool:
        if peer.uid < 0:
            return False
        if peer.uid in self.uids:
            return True
        if not self.gids:
            return False
        return peer.gid in self.gids or bool(self.gids & _supplementary_gids(peer.pid))
