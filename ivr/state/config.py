"""The menu, routing and partners files, validated together, reloaded without ever serving a broken config.

`boot` is what the process started with (the fallback URL uses only that); `current` serves calls. A reload that
fails validation leaves `current` as it was. Each good config is also copied to the runtime directory, so a worker
that gunicorn starts after SIGHUP serves the last good config when the files on disk are broken.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ivr.settings import DEFAULT_AUDIO, ServiceSettings
from ivr.state.private import private_dir
from ivr.state.recordings import Recordings
from menus import Menu, load_menu
from routing import ConfigError, Problem, Routing, load_routing

log = structlog.get_logger("ivr.config")
NAMES = ("menu.yaml", "routing.yaml", "partners.yaml")


@dataclass(frozen=True)
class Loaded:
    """One validated config: the menu, the routing, the recordings found, and the bytes they came from."""

    menu: Menu
    routing: Routing
    digest: str  # sha256 of the files' bytes, short
    files: tuple[Path, ...]
    contents: tuple[bytes, ...]  # the bytes that were validated: what the last good copy keeps
    recordings: Recordings


def digest_of(contents: tuple[bytes, ...]) -> str:
    """A content hash by role (menu, routing, partners), whatever the files are called."""
    h = hashlib.sha256()
    for role, data in zip(NAMES, contents, strict=False):
        h.update(role.encode() + b"\0" + data + b"\0")
    return h.hexdigest()[:16]


def contents_of(files: list[Path]) -> tuple[bytes, ...]:
    """The bytes of each file ('' for one that cannot be read: loading it says why)."""
    out = []
    for f in files:
        try:
            out.append(f.read_bytes())
        except OSError:
            out.append(b"")  # unreadable: loading it says why
    return tuple(out)


def problems_of(err: Exception) -> list[str]:
    """What to tell an operator about a config that did not load: the file's problems, or the error itself."""
    if isinstance(err, ConfigError):
        return [str(p) for p in err.problems]
    return [f"{type(err).__name__}: {err}"]


def load(menu_file: Path, routing_file: Path, partners_file: Path | None = None, *,
         audio_dir: Path | None = DEFAULT_AUDIO) -> Loaded:
    """All files, cross-checked (every plan option is a menu option). Raises ConfigError naming file and path, also
    when a file changed while it was being read (an edit in progress): what is validated is exactly what is kept."""
    files = [menu_file, routing_file] + ([partners_file] if partners_file else [])
    before = contents_of(files)
    menu = load_menu(menu_file)
    routing = load_routing(routing_file, menu.layouts, partners_file)
    if partners_file and routing.spec.counsellors and partners_file.stat().st_mode & 0o077:
        log.warning("partners_file_readable_by_others", file=str(partners_file),
                    detail="it holds counsellors' PIN hashes: chmod 600, owned by the service user")
    changed = [f for f, was, now in zip(files, before, contents_of(files), strict=True) if was != now]
    if changed:
        raise ConfigError([Problem(str(f), "", "changed while it was being read; reload once it is written")
                           for f in changed])
    return Loaded(menu, routing, digest_of(before), tuple(files), before, Recordings(audio_dir, menu.spec.languages))


def changes(old: Loaded, new: Loaded) -> list[str]:
    """What a reload changed, by id: campaigns, partners, plans, referral lines, menu options and prompts."""
    out: list[str] = []

    def by_id(kind: str, a: dict[str, Any], b: dict[str, Any]) -> None:
        for key in sorted(b.keys() - a.keys()):
            out.append(f"{kind} {key} added")
        for key in sorted(a.keys() - b.keys()):
            out.append(f"{kind} {key} removed")
        for key in sorted(a.keys() & b.keys()):
            if a[key] != b[key]:
                out.append(f"{kind} {key} changed")

    o, n = old.routing.spec, new.routing.spec
    by_id("campaign", {c.id: c for c in o.campaigns}, {c.id: c for c in n.campaigns})
    by_id("partner", {p.id: p for p in o.partners}, {p.id: p for p in n.partners})
    by_id("plan", {f"{k}.{opt}": v for k, plan in o.plans.items() for opt, v in plan.items()},
          {f"{k}.{opt}": v for k, plan in n.plans.items() for opt, v in plan.items()})
    by_id("referral", {r.id: r for r in o.referrals}, {r.id: r for r in n.referrals})
    by_id("layout", {k: (v, old.menu.repeat_key(k)) for k, v in old.menu.layouts.items()},
          {k: (v, new.menu.repeat_key(k)) for k, v in new.menu.layouts.items()})
    by_id("prompts", old.menu.spec.prompts, new.menu.spec.prompts)
    if (old.menu.spec.languages, old.menu.spec.language_keys) != (new.menu.spec.languages,
                                                                     new.menu.spec.language_keys):
        out.append("languages changed")
    return out


class LastGood:
    """Copies of the last config that validated, in the runtime directory (0700, this user's own: one planted by
    another user is refused, never served), switched atomically."""

    def __init__(self, runtime_dir: Path | None):
        self.dir = runtime_dir
        if runtime_dir is not None:
            private_dir(runtime_dir, "IVR_RUNTIME_DIR")

    def files(self) -> tuple[Path, Path, Path | None] | None:
        """The last good copies of the menu, routing and partners files, or None when none was kept."""
        if self.dir is None or not (self.dir / "last-good").exists():
            return None
        base = (self.dir / "last-good").resolve()
        partners = base / NAMES[2]
        return base / NAMES[0], base / NAMES[1], partners if partners.exists() else None

    def digest(self) -> str | None:
        """The content hash of the last good config, or None."""
        if self.dir is None:
            return None
        link = self.dir / "last-good"
        return os.readlink(link).removeprefix("good-") if link.is_symlink() else None

    def save(self, loaded: Loaded) -> None:
        """Keep this config as the last good one (its validated bytes), switched atomically."""
        if self.dir is None:
            return
        if self.digest() == loaded.digest:  # unchanged: mark the reload as taken all the same
            os.utime(self.dir / "last-good", follow_symlinks=False)
            return
        target = self.dir / f"good-{loaded.digest}"
        if not target.exists():
            staging = Path(tempfile.mkdtemp(prefix="staging-", dir=self.dir))
            for data, name in zip(loaded.contents, NAMES, strict=False):
                (staging / name).write_bytes(data)  # the validated bytes, not the file as it is now
            try:
                staging.rename(target)
            except OSError:  # another worker saved the same config first
                shutil.rmtree(staging, ignore_errors=True)
        tmp = self.dir / f"last-good.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target.name)
        tmp.replace(self.dir / "last-good")

    def reload_requested(self) -> bool:
        """A reload was asked for (SIGHUP) after the last good config was saved: the files on disk are wanted."""
        if self.dir is None:
            return True
        marker, link = self.dir / "reload-requested", self.dir / "last-good"
        if not link.is_symlink():
            return True
        return marker.exists() and marker.stat().st_mtime_ns > link.lstat().st_mtime_ns

    def claim_audit(self, event: str) -> bool:
        """True for the one process that should write the audit line for this event (workers share the dir)."""
        if self.dir is None:
            return True
        link = self.dir / "last-good"
        stamp = link.lstat().st_mtime_ns if link.is_symlink() else 0  # changes with every good config saved
        try:
            fd = os.open(self.dir / f"audited-{event}-{stamp}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.close(fd)
        return True


class ConfigHolder:
    """`current` serves calls; `boot` never changes, so the fallback URL does not depend on later reloads."""

    def __init__(self, settings: ServiceSettings, metrics: Any = None):
        self.settings = settings
        self.metrics = metrics
        self.last_good = LastGood(settings.runtime_dir)
        self.boot = self.current = self._boot()

    def _load(self, menu: Path, routing: Path, partners: Path | None) -> Loaded:
        return load(menu, routing, partners, audio_dir=self.settings.audio_dir)

    def _files(self) -> tuple[Path, Path, Path | None]:
        s = self.settings
        return s.menu_file, s.routing_file, s.partners_file

    def _boot(self) -> Loaded:
        previous = self.last_good.files()
        if previous is not None and not self.last_good.reload_requested():
            # A worker restarted for another reason (timeout, memory): serve what the other workers serve.
            try:
                return self._load(*previous)
            except Exception:
                log.exception("last_good_unreadable")
        try:
            loaded = self._load(*self._files())
        except Exception as e:  # any failure: a worker must never fail to boot while a good config exists
            previous = previous or self.last_good.files()  # kept meanwhile by a worker of the same start
            if previous is None:
                raise  # nothing good to fall back to: the service must not start
            log.error("config_rejected", problems=problems_of(e), serving="last good config")
            self._count("rejected")
            return self._load(*previous)
        if previous is not None and self.last_good.digest() != loaded.digest:
            try:
                old: Loaded | None = self._load(*previous)
            except Exception:  # a last good copy from an older release: the change is still applied
                old = None
            self._applied(old, loaded)
        elif self.last_good.claim_audit(f"loaded-{loaded.digest}"):
            log.info("config_loaded", hash=loaded.digest, files=[str(f) for f in loaded.files])
        self.last_good.save(loaded)
        return loaded

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.reloads.labels(result).inc()
            self.metrics.config_rejected.set(1 if result == "rejected" else 0)

    def _applied(self, old: Loaded | None, new: Loaded) -> None:
        self._count("applied")
        if self.last_good.claim_audit(f"applied-{old.digest if old else 'unknown'}-{new.digest}"):
            log.info("config_applied", hash=new.digest, previous=old.digest if old else None,
                     changes=changes(old, new) if old else ["everything (the previous config could not be read)"])

    def reload(self) -> tuple[str, Loaded, list[str]]:
        """Re-read and validate; returns (applied | unchanged | rejected, the config now serving, details)."""
        try:
            loaded = self._load(*self._files())
        except Exception as e:
            problems = problems_of(e)
            log.error("config_rejected", problems=problems, serving=self.current.digest)
            self._count("rejected")
            return "rejected", self.current, problems
        if loaded.digest == self.current.digest:
            self._count("unchanged")
            return "unchanged", self.current, []
        old, self.current = self.current, loaded
        self._applied(old, loaded)
        self.last_good.save(loaded)
        return "applied", loaded, changes(old, loaded)


def request_reload(runtime_dir: Path) -> None:
    """Mark that the files on disk should be taken: workers started from now on load them (gunicorn's on_reload).
    Raises UnsafeDirectory when the runtime directory is not this user's own."""
    private_dir(runtime_dir, "IVR_RUNTIME_DIR")
    marker = runtime_dir / "reload-requested"
    marker.touch()
    os.utime(marker)  # a fresh mtime even when the file already existed


def init_app(app: Any) -> None:
    """Load the config for this app (or the last good one) into app.extensions["ivr.config"]."""
    app.extensions["ivr.config"] = ConfigHolder(app.extensions["ivr.settings"], app.extensions.get("ivr.metrics"))
