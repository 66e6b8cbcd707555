"""Directories only the service's user may touch: the runtime directory (last good config), the metrics directory
(PROMETHEUS_MULTIPROC_DIR) and the embedded store's state directory.

Each is created 0700. One that already exists is used only if it is a real directory (not a symbolic link), owned
by this user and writable by nobody else; otherwise `UnsafeDirectory` names it and what is wrong, and nothing in it
is read or removed: a directory another user planted (a `last-good` config replacing a partner's number, metrics
files) is never served. An existing directory of our own that others may read is narrowed to 0700.

The way there must be as safe as the directory itself, or another user could swap it after the check: every
directory on the path, walked from / down as the kernel resolves it, must belong to this user or root and be
writable by nobody else, unless its sticky bit keeps others from renaming what is ours (root's /tmp); a symbolic
link on the way is followed only if this user or root made it. Emptying goes through the checked directory's own
file descriptor and follows no link inside.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

PRIVATE = 0o700
PARENT = 0o755  # a missing parent is made like this (not wider, whatever the umask)
MAX_LINKS = 40  # symbolic links followed on the way, as Linux allows


class UnsafeDirectory(OSError):
    """A directory the service would use is not private to its user; the message is one line naming it."""


def problem(st: os.stat_result, uid: int) -> str | None:
    """What makes a directory with this lstat result unsafe for the user `uid`, or None when it is private."""
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != uid:
        return f"belongs to another user (uid {st.st_uid}; this service runs as uid {uid})"
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by group or others (mode {mode:04o})"
    return None


def ancestor_problem(st: os.stat_result, uid: int) -> str | None:
    """What makes a directory (or link) on the way to a private one unsafe for `uid` (lstat result), or None: a link
    or directory of another user than `uid` or root, or a directory others may write without the sticky bit."""
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid not in (uid, 0):
        what = "is a symbolic link of" if stat.S_ISLNK(st.st_mode) else "belongs to"
        return f"{what} another user (uid {st.st_uid}; this service runs as uid {uid})"
    if stat.S_ISLNK(st.st_mode):
        return None
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        return f"is writable by group or others without the sticky bit (mode {mode:04o})"
    return None


def _way(path: Path, uid: int) -> tuple[str, str] | None:
    """(directory, what is wrong) for the first unsafe one on the way to `path`'s last component, links resolved
    from / down as the kernel would; None when the way is safe. A missing directory ends the walk (ours to make)."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    pending = list(absolute.parts[1:-1])  # not normalised: "x/link/.." is the link's parent, as open() sees it
    current, links = Path("/"), 0
    reason = ancestor_problem(os.lstat(current), uid)
    if reason is not None:
        return str(current), reason
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent
            continue
        step = current / name
        try:
            st = os.lstat(step)
        except FileNotFoundError:
            return None
        reason = ancestor_problem(st, uid)
        if reason is not None:
            return str(step), reason
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                return str(step), "leads through too many symbolic links"
            target = Path(os.readlink(step))
            current = Path("/") if target.is_absolute() else current
            pending[:0] = list(target.parts[1:] if target.is_absolute() else target.parts)
            continue
        current = step
    return None


def _check_way(path: Path, variable: str, uid: int) -> None:
    """Raise UnsafeDirectory (one line) when the way to `path` is not safe (`_way`)."""
    found = _way(path, uid)
    if found is not None:
        where, reason = found
        raise UnsafeDirectory(f"{variable} {path} is under {where}, which {reason}: set {variable} to a directory "
                              "whose parents only this user or root can write")


def _checked(path: Path, variable: str) -> os.stat_result:
    """private_dir's work; the lstat result of the directory checked."""
    uid = os.getuid()
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        _refuse(path, variable, problem(st, uid))
    _check_way(path, variable, uid)
    if st is None:
        for parent in reversed([p for p in path.parents if not p.exists()]):
            try:
                os.mkdir(parent, PARENT)
            except FileExistsError:
                pass  # made meanwhile: the walk below checks it
        try:
            os.mkdir(path, PRIVATE)
        except FileExistsError:
            pass  # made meanwhile, by another worker or someone else: checked below like any existing one
        _check_way(path, variable, uid)
        st = os.lstat(path)
        _refuse(path, variable, problem(st, uid))
    if stat.S_IMODE(st.st_mode) != PRIVATE:  # ours and closed to writers, but readable by others (or made under a
        fd = _opened(path, st, variable)  # tight umask): narrowed, never followed
        try:
            os.fchmod(fd, PRIVATE)
        finally:
            os.close(fd)
    return st


def _refuse(path: Path, variable: str, reason: str | None) -> None:
    """Raise UnsafeDirectory naming `path`, what is wrong and the variable that chooses it (nothing if `reason` is
    None)."""
    if reason is not None:
        raise UnsafeDirectory(f"{variable} {path} {reason}: remove it, or set {variable} to a directory that only "
                              "this user can write")


def _opened(path: Path, st: os.stat_result, variable: str) -> int:
    """A file descriptor on the very directory `st` describes, opened without following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise UnsafeDirectory(f"{variable} {path} was replaced while it was being checked") from None
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise UnsafeDirectory(f"{variable} {path} was replaced while it was being checked")
    return fd


def private_dir(path: Path, variable: str) -> Path:
    """`path` as a directory only this user can use, on a way nobody else can change: made 0700 if missing (its
    parents 0755), else checked with lstat. Raises UnsafeDirectory naming the directory, what is wrong and the
    variable that chooses it."""
    _checked(path, variable)
    return path


def emptied(path: Path, variable: str) -> Path:
    """`path` as private_dir makes it, with nothing left inside (a fresh start): checked first, then emptied through
    its own file descriptor (a directory swapped in after the check is refused, never emptied), following no link."""
    fd = _opened(path, _checked(path, variable), variable)
    try:
        with os.scandir(fd) as entries:
            names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
        for name, is_dir in names:
            if is_dir:
                shutil.rmtree(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)
    return path
