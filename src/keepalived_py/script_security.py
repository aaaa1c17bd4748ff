"""keepalived's script security rule, decided in one place for every kind of script.

Every script kpd may run goes through :func:`decide` (or a :class:`ScriptPolicy`, which remembers the
answers): ``vrrp_script``, the VRRP ``notify*`` scripts, ``MISC_CHECK``'s ``misc_path``, ``quorum_up`` /
``quorum_down`` and ``notify_up`` / ``notify_down``.  ``kpd check-config`` and the engines ask the same
question and so get the same answer.

This is a small shared base: it imports nothing from the rest of ``keepalived_py``.  It holds the pure
decision and the filesystem checks it needs; running a script is :mod:`keepalived_py.script_runner`'s job.

The rule (keepalived ``check_script_secure()`` / ``get_default_script_user()``, ``core/notify.c``):

* **The program.** A first word without ``/`` is looked up in :data:`SCRIPT_PATH` (the ``PATH`` scripts
  are given) and replaced by the file found, so what was checked is what runs.  A program that is not
  found, or not executable by the user the script runs as, disables the script.
* **The user.** The script's own ``user`` if it names one, else ``global_defs``' ``script_user``, else
  ``keepalived_script`` if that user exists.  Otherwise keepalived runs the script as itself (root), but
  only while ``enable_script_security`` is off: with it on, the script is disabled ("Unable to set default
  user keepalived_script for script"); ``script_user root`` allows root explicitly.  An unknown user or
  group disables the script.
* **The path.** When the script would run with root privileges (uid 0 or gid 0, or the file is set-uid /
  set-gid root), the file and every directory above it must be owned by root and not writable by group
  (unless the group is root) or others, sticky directories such as ``/tmp`` excepted
  (:func:`script_is_secure`).  An unsafe path disables the script when ``enable_script_security`` is on,
  and is only reported (:attr:`ScriptDecision.unsafe`) when it is off.
* A first word starting with ``<`` (keepalived's ``"</path"``: a test that a file opens) runs nothing and
  is not checked.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

__all__ = [
    "DEFAULT_SCRIPT_USER",
    "SCRIPT_PATH",
    "ScriptDecision",
    "ScriptPolicy",
    "UserSpec",
    "decide",
    "find_script",
    "script_is_secure",
    "script_needs_protection",
]

#: ``PATH`` scripts run with, and where a bare program name is looked up.
SCRIPT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

#: The user keepalived runs scripts as when neither the script nor global_defs names one (if it exists).
DEFAULT_SCRIPT_USER = "keepalived_script"


class UserSpec(Protocol):
    """A configured ``USER [GROUP]`` (the config model's ``ScriptUser``)."""

    @property
    def user(self) -> str: ...

    @property
    def group(self) -> str | None: ...


@dataclass(frozen=True)
class ScriptDecision:
    """Whether and how a script runs.

    ``argv`` is the command with its program resolved (run exactly this).  ``user``/``group`` are the
    names to run as (None: as ourselves).  ``refused`` says why the script is disabled (None: it may run).
    ``unsafe`` names a path problem tolerated because ``enable_script_security`` is off.  ``missing`` says
    that the refusal is for a program that is not there (not found, not executable) rather than a
    security or user problem.
    """

    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None
    refused: str | None = None
    unsafe: str | None = None
    missing: bool = False

    @property
    def allowed(self) -> bool:
        return self.refused is None


def decide(
    argv: Sequence[str],
    *,
    enable_script_security: bool,
    user: UserSpec | None = None,
    script_user: UserSpec | None = None,
) -> ScriptDecision:
    """keepalived's decision for the command ``argv``: ``user`` is the script's own ``user`` keyword,
    ``script_user`` the global one."""
    args = tuple(argv)
    if not args or not args[0]:
        return ScriptDecision(args, refused="empty command", missing=True)
    if args[0].startswith("<"):
        return ScriptDecision(args)
    # Who it runs as.
    chosen = user or script_user
    if chosen is not None:
        name, group = chosen.user, chosen.group
    else:
        try:
            pwd.getpwnam(DEFAULT_SCRIPT_USER)
        except KeyError:
            if enable_script_security:
                return ScriptDecision(
                    args,
                    refused=f"default script user {DEFAULT_SCRIPT_USER} does not exist and "
                    "enable_script_security refuses to run scripts as root without script_user",
                )
            name, group = None, None
        else:
            name, group = DEFAULT_SCRIPT_USER, None
    ids = resolve_ids(name, group)
    if isinstance(ids, str):
        return ScriptDecision(args, name, group, refused=ids)
    uid, gid = ids
    # What runs.
    found = find_script(args[0])
    if found is None:
        return ScriptDecision(args, name, group, refused=f"{args[0]}: not found", missing=True)
    program = str(found)
    args = (program, *args[1:])
    try:
        st = os.stat(program)
    except OSError as exc:
        return ScriptDecision(args, name, group, refused=f"{program}: cannot be accessed ({exc.strerror})",
                              missing=True)
    if not _executable(st, uid, gid):
        return ScriptDecision(
            args, name, group, refused=f"{program}: not executable by uid:gid {uid}:{gid}", missing=True
        )
    # Is it safe to run with these privileges?
    if script_needs_protection(program, uid, gid):
        reason = script_is_secure(program)
        if reason is not None:
            if enable_script_security:
                return ScriptDecision(args, name, group, refused=f"insecure: {reason}")
            return ScriptDecision(args, name, group, unsafe=reason)
    return ScriptDecision(args, name, group)


class ScriptPolicy:
    """:func:`decide` with the global settings bound, remembering each answer.

    keepalived decides once per script when it reads its configuration; an engine makes one policy per
    configuration, so a script is judged (and a refusal logged) once, not on every run.  Arguments after
    the program do not change the decision and are kept as given.
    """

    def __init__(self, *, enable_script_security: bool, script_user: UserSpec | None = None) -> None:
        self.enable_script_security = enable_script_security
        self.script_user = script_user
        self._cache: dict[tuple[str, str | None, str | None], ScriptDecision] = {}

    @classmethod
    def of(cls, global_defs: object) -> ScriptPolicy:
        """The policy of a ``global_defs`` (anything with ``enable_script_security`` and ``script_user``)."""
        return cls(
            enable_script_security=bool(getattr(global_defs, "enable_script_security", False)),
            script_user=getattr(global_defs, "script_user", None),
        )

    def decide(self, argv: Sequence[str], user: UserSpec | None = None) -> ScriptDecision:
        args = tuple(argv)
        if not args:
            return ScriptDecision(args, refused="empty command", missing=True)
        key = (args[0], user.user if user else None, user.group if user else None)
        cached = self._cache.get(key)
        if cached is None:
            cached = decide(
                args[:1],
                enable_script_security=self.enable_script_security,
                user=user,
                script_user=self.script_user,
            )
            self._cache[key] = cached
        return replace(cached, argv=(*cached.argv[:1], *args[1:]))


def resolve_ids(user: str | None, group: str | None) -> tuple[int, int] | str:
    """(uid, gid) a script runs with, resolved like keepalived's ``set_uid_gid()``, or an error."""
    if user is None:
        uid, gid = os.geteuid(), os.getegid()
    else:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            return f"unknown user {user}"
        uid, gid = pw.pw_uid, pw.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            return f"unknown group {group}"
    return uid, gid


def _executable(st: os.stat_result, uid: int, gid: int) -> bool:
    """Whether uid:gid may execute the file (keepalived's ``is_executable()``)."""
    mode = st.st_mode
    if not stat.S_ISREG(mode):
        return False
    if uid == 0:
        return bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if uid == st.st_uid:
        return bool(mode & stat.S_IXUSR)
    if gid == st.st_gid:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def find_script(argv0: str) -> Path | None:
    """The file a script's first word names: an absolute path to a regular file, or None.

    A bare name is searched in :data:`SCRIPT_PATH`; a relative path is taken from ``/`` (scripts run there).
    Symbolic links are not resolved: the path returned is the one that runs.
    """
    if "/" in argv0:
        found: str | None = argv0
    else:
        found = shutil.which(argv0, path=SCRIPT_PATH)
    if not found:
        return None
    path = Path(os.path.normpath(os.path.join("/", found)))
    try:
        if not path.is_file():
            return None
    except OSError:
        return None
    return path


def script_needs_protection(path: str | os.PathLike[str], uid: int, gid: int) -> bool:
    """Whether keepalived would apply its path security check to this script.

    keepalived checks the path only when the script would run with root privileges: run as uid 0 or
    gid 0, or the file is set-uid root (and owner-executable) or set-gid root (and group-executable).
    A file that cannot be stat'ed needs no protection (it cannot run).
    """
    if uid == 0 or gid == 0:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    mode = st.st_mode
    return (st.st_uid == 0 and bool(mode & stat.S_IXUSR) and bool(mode & stat.S_ISUID)) or (
        st.st_gid == 0 and bool(mode & stat.S_IXGRP) and bool(mode & stat.S_ISGID)
    )


def script_is_secure(path: str | os.PathLike[str]) -> str | None:
    """None if the script at ``path`` is secure by keepalived's rule, else a reason naming the culprit.

    The rule (``check_security()`` in keepalived's ``lib/notify.c``), applied to the resolved path
    (symbolic links and ``.``/``..`` removed) and checking every component from ``/`` down with
    ``lstat``:

    * every component must be owned by root;
    * a directory *without* the sticky bit, and the file itself, must not be writable by others, nor by
      its group unless that group is root (gid 0) — group write by root's group is allowed, and a
      world-writable sticky directory such as ``/tmp`` is allowed;
    * every component but the last must be a directory; the last must be a regular file (or a symbolic
      link, which is only checked for root ownership).

    Like keepalived, when ``path``'s file name is a symbolic link whose resolved directory holds a link
    of the same name to the same file, that name is checked as well as the real file.  A path that
    cannot be resolved is reported as not found.
    """
    given = os.fspath(path)
    try:
        real = os.path.realpath(given, strict=True)
    except (OSError, RuntimeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"{given}: not found ({why})"
    to_check = [real]
    real_dir, real_name = os.path.split(real)
    given_name = os.path.basename(given)
    if given_name and given_name != real_name:
        # keepalived keeps the name a script was invoked by if, in the resolved directory, that name
        # still reaches the same file (some programs behave according to their name).
        alias = os.path.join(real_dir, given_name)
        try:
            same = os.path.samestat(os.stat(alias), os.stat(real))
        except OSError:
            same = False
        if same:
            to_check.insert(0, alias)
    for candidate in to_check:
        reason = _insecure_component(candidate)
        if reason is not None:
            return reason
    return None


def _insecure_component(path: str) -> str | None:
    """Apply keepalived's per-component rule to the absolute ``path``."""
    parts = [p for p in path.split("/") if p]
    prefixes = ["/"] + ["/" + "/".join(parts[: k + 1]) for k in range(len(parts))]
    for index, component in enumerate(prefixes):
        last = index == len(prefixes) - 1
        try:
            st = os.lstat(component)
        except OSError as exc:
            return f"{component}: not found ({exc.strerror})"
        mode = st.st_mode
        if (not last and not stat.S_ISDIR(mode)) or (last and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode))):
            return f"{component}: wrong file type in script path"
        if st.st_uid != 0:
            return f"{component}: owned by uid {st.st_uid}, not root"
        if (stat.S_ISDIR(mode) and not mode & stat.S_ISVTX) or stat.S_ISREG(mode):
            if mode & stat.S_IWOTH:
                return f"{component}: writable by others"
            if st.st_gid != 0 and mode & stat.S_IWGRP:
                return f"{component}: writable by group {st.st_gid}"
    return None
