"""Privilege drop for ``mailhub serve`` started as root (systemd, init) on ports below 1024.

The order matters: the server binds every listener and loads the TLS files while still root
(ports below 1024 and root-only Let's Encrypt keys need it), then switches for good to the
configured ``user``/``group`` before it accepts a single connection, so no client input is
ever handled with root privileges. Files created before the switch in the data directory
(the directory itself, the first accounts file, a generated certificate) are handed to that
user, so the unprivileged server can keep writing them.

Not root, or no ``user`` configured: nothing happens (the container image runs as its own
non-root user from the start).
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from mailhub.config import Settings

log = logging.getLogger("mailhub")


class PrivilegeError(Exception):
    """The configured user or group cannot be used; the message names it."""


@dataclass(frozen=True)
class Ids:
    user: str
    uid: int
    gid: int


def target(settings: Settings) -> Ids | None:
    """The user and group to become, or None when there is nothing to drop."""
    if settings.user is None or os.geteuid() != 0:
        return None
    try:
        pw = (
            pwd.getpwuid(int(settings.user))
            if settings.user.isdigit()
            else pwd.getpwnam(settings.user)
        )
    except KeyError:
        raise PrivilegeError(f"user: no such user {settings.user!r}") from None
    gid = pw.pw_gid
    if settings.group is not None:
        try:
            gid = (
                grp.getgrgid(int(settings.group))
                if settings.group.isdigit()
                else grp.getgrnam(settings.group)
            ).gr_gid
        except KeyError:
            raise PrivilegeError(f"group: no such group {settings.group!r}") from None
    if pw.pw_uid == 0:
        raise PrivilegeError("user: refusing to 'drop' to root; name an unprivileged user")
    return Ids(pw.pw_name, pw.pw_uid, gid)


def hand_over(data_dir: Path, ids: Ids) -> None:
    """Give root-owned files at the top of the data directory (and ``tls/``) to ``ids``.

    Only what this start created as root; a mail tree owned by someone else is left for
    ``mailhub doctor`` to report rather than silently re-owned.
    """
    paths = [data_dir]
    for sub in ("accounts.json", "tls"):
        p = data_dir / sub
        if p.exists():
            paths.append(p)
    tls = data_dir / "tls"
    if tls.is_dir():
        paths.extend(tls.iterdir())
    for p in paths:
        st = p.lstat()
        if st.st_uid == 0:
            os.lchown(p, ids.uid, ids.gid)


def drop(settings: Settings) -> Ids | None:
    """Switch to the configured user for good (after binding); returns who we became."""
    ids = target(settings)
    if ids is None:
        return None
    hand_over(settings.data_dir, ids)
    os.setgroups([ids.gid])
    os.setgid(ids.gid)
    os.setuid(ids.uid)
    if os.getuid() != ids.uid or os.geteuid() != ids.uid:
        raise PrivilegeError("could not switch user")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:  # pragma: no cover - would mean the drop was not permanent
        raise PrivilegeError("privileges could be regained after the switch")
    os.environ["HOME"] = pwd.getpwuid(ids.uid).pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = ids.user
    log.info("now running as %s (uid %d, gid %d)", ids.user, ids.uid, ids.gid)
    return ids
