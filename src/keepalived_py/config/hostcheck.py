"""Checks of a configuration against the host it will run on, as ``keepalived -t`` makes them.

These read the system (interfaces, script files), so they are kept apart from the pure validation:
interfaces that do not exist are errors unless ``dynamic_interfaces`` is set.  Scripts are judged by
:mod:`keepalived_py.script_security`, the rule the engines apply too: a program that is missing or not
executable is noted as disabled; a script refused by script security (unsafe path, no script user) is an
error; without ``enable_script_security`` any script that would run is a security error, exit 6.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from keepalived_py.config.build import Origins
from keepalived_py.config.diagnostics import DiagnosticSink, Location
from keepalived_py.config.model import Config
from keepalived_py.config.validate import Validator
from keepalived_py.net_namespace import NamespaceError, entered
from keepalived_py.script_security import ScriptPolicy

#: Scripts whose user comes from a ``user`` keyword of their own, not from words after the command.
_OWN_USER_KEYWORD = ("vrrp_script", "MISC_CHECK")


def interface_exists(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def check_host(
    config: Config,
    origins: Origins,
    sink: DiagnosticSink,
    exists: Callable[[str], bool] = interface_exists,
    *,
    namespace: str | None = None,
) -> None:
    """``namespace``: where the interfaces are looked for: None, the configuration's ``net_namespace``;
    ``""``, the namespace we are in; else the one named."""
    where = config.net_namespace if namespace is None else namespace or None
    if where is not None:
        try:
            with entered(where):
                _check_interfaces(config, origins, sink, exists)
        except NamespaceError as err:
            if namespace:  # named on the command line (kpd start --namespace), not in the file
                sink.fatal(f"--namespace {namespace}: {err}")
            else:
                sink.fatal(str(err), origins.loc(config, "net_namespace"))
    else:
        _check_interfaces(config, origins, sink, exists)
    _check_scripts(config, origins, sink)


def _check_interfaces(
    config: Config, origins: Origins, sink: DiagnosticSink, exists: Callable[[str], bool]
) -> None:
    """Every interface an instance names exists (in the configuration's network namespace)."""
    gd = config.global_defs
    if not gd.dynamic_interfaces:
        found: dict[str, bool] = {}  # each name asked once: many instances share an interface
        for inst in config.vrrp_instances:
            seen: set[str] = set()
            names: list[tuple[str | None, Location | None]] = [(inst.interface or gd.default_interface, None)]
            names += [(t.name, t.location) for t in inst.track_interface]
            names += [
                (v.dev, v.location) for v in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)
            ]
            for name, loc in names:
                if not name or name in seen:
                    continue
                if name not in found:
                    found[name] = exists(name)
                if not found[name]:
                    seen.add(name)
                    where = loc if loc is not None else origins.loc(inst, "interface")
                    sink.error(f"interface {name} for vrrp_instance {inst.name} doesn't exist", where)


def _check_scripts(config: Config, origins: Origins, sink: DiagnosticSink) -> None:
    gd = config.global_defs
    policy = ScriptPolicy.of(gd)
    found = []
    for what, argv, loc, user in Validator(config, origins, sink).scripts():
        if argv[0].startswith("<"):
            continue  # keepalived's "</path": a test that the file opens, nothing is executed
        decision = policy.decide(argv, user)
        if decision.refused is not None:
            report = sink.note if decision.missing else sink.error
            hint = ""
            if user is not None and "unknown" in decision.refused and not what.startswith(_OWN_USER_KEYWORD):
                hint = "; the words after a notify script are USER [GROUP]: quote the whole command line"
            report(f"{what}: script '{argv[0]}' cannot run ({decision.refused}); it is disabled{hint}", loc)
            continue
        found.append((what, loc))
    if found and not gd.enable_script_security:
        what, loc = found[0]
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        sink.security(
            f"SECURITY VIOLATION - scripts are being executed but enable_script_security is not set "
            f"({what}{more})",
            loc,
        )
