"""The ``kpd`` command line.

* ``kpd check-config`` validates a configuration, with ``keepalived -t``'s exit codes;
* ``kpd render`` renders a Jinja2 configuration template;
* ``kpd start`` runs the daemon in the foreground (the parent, which spawns the VRRP and checker children);
* ``kpd status``, ``kpd stop``, ``kpd reload`` talk to a running daemon through its control socket;
* ``kpd events`` prints the daemon's recent history (transitions, check verdicts, IPVS operations, script
  runs, child restarts, reloads), and with ``--follow`` streams new events (docs/events.md);
* ``kpd genhash`` prints the MD5 digest of a URL's body for HTTP_GET/SSL_GET (as keepalived's genhash).

Each command imports what it needs when it runs (the daemon, Jinja2, asyncio...): ``kpd check-config`` loads
only the configuration front end.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from keepalived_py import __version__
from keepalived_py.config import load_config
from keepalived_py.config.diagnostics import Diagnostic, DiagnosticSink, Severity
from keepalived_py.exitcodes import ExitCode
from keepalived_py.listen_address import parse_listen_address
from keepalived_py.logs import DEFAULT_LOG_FILE, log_file_name, setup_logging
from keepalived_py.logs import LEVELS as LOG_LEVEL_NAMES
from keepalived_py.net_namespace import NamespaceError, runtime_subdir
from keepalived_py.net_namespace import enter as enter_namespace

log = logging.getLogger("kpd")
#: how `kpd start` logs each configuration diagnostic
_LOG_LEVEL = {Severity.FATAL: logging.ERROR, Severity.NOTE: logging.INFO}

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
DEFAULT_RUNTIME_DIR = "/run/kpd"
LOG_LEVELS = tuple(LOG_LEVEL_NAMES)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--config",
        "--use-file",
        dest="config",
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"keepalived.conf or a Jinja2 template of one (*.j2) (default: {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--vars",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML or JSON variables: render the config as a Jinja2 template (repeatable)",
    )
    p.add_argument(
        "-i",
        "--config-id",
        metavar="ID",
        help="id matched by @ID conditional lines (default: the short host name)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpd", description="keepalived-compatible VRRP and LVS health-checking daemon"
    )
    parser.add_argument("--version", action="version", version=f"kpd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    start = sub.add_parser("start", help="run the daemon in the foreground")
    _config_args(start)
    start.add_argument(
        "--runtime-dir",
        metavar="DIR",
        help=f"pid file, sockets and status files (default: {DEFAULT_RUNTIME_DIR}, or "
        f"{DEFAULT_RUNTIME_DIR}/NAMESPACE/INSTANCE with net_namespace/instance); one per running kpd",
    )
    start.add_argument(
        "-s",
        "--namespace",
        metavar="NAME",
        help="run in this network namespace, overriding the configuration's net_namespace (keepalived -s)",
    )
    start.add_argument("-l", "--log-console", action="store_true", help="log to the console, not syslog")
    start.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="lowest level logged")
    start.add_argument(
        "-S",
        "--log-facility",
        type=int,
        choices=range(8),
        metavar="0-7",
        help="log to syslog facility LOCAL0..7 instead of daemon (keepalived -S)",
    )
    start.add_argument("-G", "--no-syslog", action="store_true", help="do not log to syslog (keepalived -G)")
    start.add_argument(
        "-g",
        "--log-file",
        nargs="?",
        const=DEFAULT_LOG_FILE,
        metavar="FILE",
        help=f"also log to FILE (default {DEFAULT_LOG_FILE}; the children to FILE_vrrp, FILE_check), "
        "keepalived -g",
    )
    only = start.add_mutually_exclusive_group()
    only.add_argument("-P", "--vrrp", action="store_true", help="run only the VRRP child (keepalived -P)")
    only.add_argument("-C", "--check", action="store_true", help="run only the Checkers child (-C)")
    start.add_argument("-p", "--pid", metavar="FILE", help="also write the parent's pid to FILE (-p)")
    start.add_argument(
        "-r", "--vrrp-pid", "--vrrp_pid", metavar="FILE", help="write the VRRP child's pid to FILE (-r)"
    )
    start.add_argument(
        "-c", "--checkers-pid", "--checkers_pid", metavar="FILE", help="write the Checkers child's pid (-c)"
    )
    start.add_argument(
        "--dont-release-vrrp",
        action="store_true",
        help="on stop, leave the virtual addresses in place (as keepalived's option)",
    )
    start.add_argument(
        "--dont-release-ipvs",
        action="store_true",
        help="on stop, leave the IPVS virtual and real servers in place (as keepalived's option)",
    )
    start.add_argument(
        "--metrics-listen",
        metavar="ADDR:PORT",
        type=_listen_address,
        help="serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9650; overrides the "
        "kpd_metrics_listen keyword; docs/metrics.md)",
    )

    check = sub.add_parser(
        "check-config",
        help="validate a configuration (exit codes as keepalived -t)",
        description="Exit codes, as keepalived -t: 0 valid; 4 the config cannot run; 5 errors, but it would "
        "run (unknown or unimplemented keywords, bad values ignored, missing interfaces); 6 scripts "
        "would run without enable_script_security.",
    )
    _config_args(check)
    check.add_argument("--json", action="store_true", help="print the normalized model and the diagnostics")

    lint = sub.add_parser(
        "lint",
        help="check the configurations of all the nodes of a cluster together (docs/lint.md)",
        description="Each node is checked as check-config checks it, then all are compared: VRRP instances "
        "sharing a VRID agree on addresses, version, advert_int, authentication and unicast peers, with one "
        "intended master; directors run the same virtual and real servers. Exit code: the worst of the "
        "nodes', as check-config's (0, 4, 5, 6); 2 for a bad command line.",
    )
    lint.add_argument(
        "configs",
        nargs="*",
        metavar="CONFIG[@ID]",
        help="a node's keepalived.conf (or *.j2 template); @ID: the config id of its @ID lines",
    )
    lint.add_argument(
        "--template", metavar="TEMPLATE", help="a Jinja2 template rendered once per --vars file"
    )
    lint.add_argument(
        "--vars",
        action="append",
        default=[],
        metavar="FILE[@ID]",
        help="one node: TEMPLATE rendered with these variables, named after the file (repeatable)",
    )
    lint.add_argument(
        "--host-checks",
        action="store_true",
        help="also check each node against this host (interfaces exist, script files), as check-config does",
    )
    lint.add_argument("--json", action="store_true", help="print every node's diagnostics as JSON")

    for name, text in (
        ("status", "show the running daemon's instances and children"),
        ("stop", "stop the running daemon gracefully"),
        ("reload", "validate the configuration again and apply the differences without flapping"),
        ("events", "show the running daemon's recent events; --follow streams new ones (docs/events.md)"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--runtime-dir",
            metavar="DIR",
            help=f"the daemon's runtime dir (default: {DEFAULT_RUNTIME_DIR}[/NAMESPACE][/INSTANCE])",
        )
        cmd.add_argument(
            "-s", "--namespace", metavar="NAME", help="the daemon's net_namespace (its runtime dir)"
        )
        cmd.add_argument("--instance", metavar="NAME", help="the daemon's instance name (its runtime dir)")
        if name == "status":
            cmd.add_argument("--json", action="store_true", help="print the status as JSON (docs/status.md)")
        if name == "events":
            cmd.add_argument("-f", "--follow", action="store_true",
                             help="after the recent events, print new ones as they happen (Ctrl-C ends)")
            cmd.add_argument("--json", action="store_true",
                             help="one JSON object per line, keys sorted (docs/events.md)")
            cmd.add_argument("--since", type=_count, metavar="SEQ",
                             help="only events numbered after SEQ (resume where an earlier run stopped)")
            cmd.add_argument("--limit", type=_count, metavar="N",
                             help="only the last N of the recent events (0: none; --follow then prints only "
                             "new ones)")

    genhash = sub.add_parser(
        "genhash", help="MD5 digest of a URL's body for HTTP_GET/SSL_GET digest (as keepalived's genhash)"
    )
    from keepalived_py.check import genhash as genhash_module

    genhash_module.add_arguments(genhash)

    render = sub.add_parser("render", help="render a Jinja2 configuration template")
    render.add_argument("template", metavar="TEMPLATE")
    render.add_argument("--vars", action="append", default=[], metavar="FILE", help="YAML or JSON variables")
    render.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="set a variable (value read as YAML), after the files (repeatable)",
    )
    render.add_argument("-o", "--output", metavar="OUT", help="write here instead of standard output")
    return parser


def _listen_address(text: str) -> tuple[str, int]:
    try:
        return parse_listen_address(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _count(text: str) -> int:
    """A non-negative whole number (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def cmd_check_config(args: argparse.Namespace) -> int:
    # keep_origins: the blocks and tokens are freed with the result, not inside load_config
    result = load_config(args.config, vars_files=args.vars, config_id=args.config_id, keep_origins=True)
    if args.whole_process:
        _KEEP_UNTIL_EXIT.append(result)
    code = result.exit_code
    if args.json:
        from keepalived_py.config.serialize import to_data

        doc = {
            "config": to_data(result.config) if result.config is not None else None,
            "diagnostics": [d.to_json() for d in result.diagnostics],
            "unsupported": result.unsupported,
            "exit_code": int(code),
        }
        _print_json(doc)
        sys.stdout.write("\n")
    else:
        for diag in result.diagnostics:
            print(diag.format(), file=sys.stderr)
        print(f"{args.config}: {_verdict(code, result.diagnostics)}", file=sys.stderr)
        if result.unsupported:
            print("not (fully) implemented by kpd: " + ", ".join(result.unsupported), file=sys.stderr)
    return int(code)


def cmd_lint(args: argparse.Namespace) -> int:
    from keepalived_py.config import lint

    if bool(args.template) != bool(args.vars):
        print("kpd lint: --template and --vars go together", file=sys.stderr)
        return int(ExitCode.USAGE)
    sources = lint.node_sources(args.configs, args.template, args.vars)
    if len(sources) < 2:
        print("kpd lint: name at least two nodes (use check-config for one)", file=sys.stderr)
        return int(ExitCode.USAGE)
    nodes = lint.lint(sources, host_checks=args.host_checks)
    code = lint.exit_code_of(nodes)
    if args.json:
        doc = {
            "nodes": [
                {
                    "name": node.source.name,
                    "config": node.source.config,
                    "vars": list(node.source.vars_files),
                    "config_id": node.source.config_id,
                    "diagnostics": [d.to_json() for d in node.result.diagnostics],
                    "cross_node": [d.to_json() for d in node.cross_node],
                    "unsupported": node.result.unsupported,
                    "exit_code": int(node.exit_code),
                }
                for node in nodes
            ],
            "exit_code": int(code),
        }
        _print_json(doc)
        sys.stdout.write("\n")
        return int(code)
    for node in nodes:
        for diag in node.diagnostics:
            print(diag.format(), file=sys.stderr)
        print(f"{node.source.label}: {_verdict(node.exit_code, node.diagnostics)}", file=sys.stderr)
    cross = sum(1 for node in nodes for d in node.cross_node if d.severity is not Severity.NOTE)
    together = f"{cross} disagreement(s) between the nodes" if cross else "the nodes agree"
    print(f"kpd lint: {len(nodes)} nodes: {together}", file=sys.stderr)
    return int(code)


def _print_json(doc: object) -> None:
    """Print *doc* as indented JSON (json is imported only by the commands that print it)."""
    import json

    json.dump(doc, sys.stdout, indent=2, sort_keys=True)


def _verdict(code: ExitCode, diagnostics: Sequence[Diagnostic]) -> str:
    """check-config's verdict line: what the exit code means, and how many diagnostics of each severity."""
    counts: dict[Severity, int] = {}
    for diag in diagnostics:
        counts[diag.severity] = counts.get(diag.severity, 0) + 1
    summary = ", ".join(f"{n} {sev.value}" for sev, n in counts.items() if sev is not Severity.NOTE)
    verdict = {
        ExitCode.OK: "configuration is valid",
        ExitCode.CONFIG_FATAL: "configuration cannot run",
        ExitCode.CONFIG_ERRORS: "configuration has errors but would run",
        ExitCode.CONFIG_SCRIPT_SECURITY: "configuration runs scripts without enable_script_security",
    }[code]
    return verdict + (f" ({summary})" if summary else "")


def cmd_render(args: argparse.Namespace) -> int:
    from keepalived_py.config import template as config_template

    sink = DiagnosticSink()
    variables = config_template.load_variables(args.vars, args.overrides, sink)
    rendered = None if sink.has_fatal else config_template.render(args.template, variables, sink)
    for diag in sink:
        print(diag.format(), file=sys.stderr)
    if rendered is None:
        return int(ExitCode.CONFIG_FATAL)
    if args.output:
        Path(args.output).write_text(rendered.text, "utf-8")
    else:
        sys.stdout.write(rendered.text)
    return int(ExitCode.OK)


def _runtime_dir(args: argparse.Namespace, namespace: str | None, instance: str | None) -> str:
    """``--runtime-dir`` as given, else the default one of this namespace and instance."""
    if args.runtime_dir:
        return str(args.runtime_dir)
    return str(runtime_subdir(DEFAULT_RUNTIME_DIR, namespace, instance))


def cmd_start(args: argparse.Namespace) -> int:
    from keepalived_py.runtime_files import ensure_runtime_dir, write_file_atomic

    # the parent's file (keepalived: the namespace and instance in the name); known once the config is read
    log_file = log_file_name(args.log_file, None, args.namespace) if args.log_file else None
    setup_logging(
        console=args.log_console,
        level=args.log_level,
        facility=args.log_facility,
        syslog=not args.no_syslog,
        log_file=log_file,
    )
    result = load_config(
        args.config, vars_files=args.vars, config_id=args.config_id, namespace=args.namespace
    )
    for diag in result.diagnostics:  # once, at start (a reload logs its own); partial features included
        print(diag.format(), file=sys.stderr)
        if not args.log_console:  # the console already has them; the log (syslog, journal) gets them too
            log.log(_LOG_LEVEL.get(diag.severity, logging.WARNING), "%s", diag.format())
    if not result.runnable or result.config is None:
        return int(ExitCode.CONFIG_FATAL)
    config = result.config
    namespace = args.namespace or config.net_namespace
    if args.log_file and (namespace != args.namespace or config.instance_name):
        # keepalived names the file after the namespace and instance too: known now
        setup_logging(
            console=args.log_console,
            level=args.log_level,
            facility=args.log_facility,
            syslog=not args.no_syslog,
            log_file=log_file_name(args.log_file, None, namespace, config.instance_name),
        )
    if args.namespace and config.net_namespace and args.namespace != config.net_namespace:
        log.info("net_namespace %s of the configuration is overridden by --namespace %s",
                 config.net_namespace, args.namespace)
    try:
        runtime_dir = ensure_runtime_dir(_runtime_dir(args, namespace, config.instance_name))
    except OSError as err:
        print(f"kpd start: unsafe or unusable runtime directory: {err}", file=sys.stderr)
        return int(ExitCode.FAILURE)
    if namespace is not None:
        # Before anything is started: every child, socket and script lives in the namespace (keepalived).
        try:
            enter_namespace(namespace)
        except NamespaceError as err:
            print(f"kpd start: {err}", file=sys.stderr)
            return int(ExitCode.CONFIG_FATAL)
        log.info("running in network namespace %s", namespace)
    if not config.has_vrrp and not config.has_checkers:
        print("kpd start: neither a vrrp_instance nor a virtual_server is configured", file=sys.stderr)
        return int(ExitCode.CONFIG_FATAL)
    from keepalived_py.control.arbiter import Arbiter
    from keepalived_py.control.pidfile import PidFileError, claim_pid_file

    try:
        pid_file = claim_pid_file(runtime_dir)
    except PidFileError as err:
        print(f"kpd start: {err}", file=sys.stderr)
        return int(ExitCode.FAILURE)
    arbiter = Arbiter(
        config,
        config_path=args.config,
        runtime_dir=runtime_dir,
        vars_files=args.vars,
        config_id=args.config_id,
        log_console=args.log_console,
        log_level=args.log_level,
        release_vrrp=not args.dont_release_vrrp,
        release_ipvs=not args.dont_release_ipvs,
        diagnostics=result.diagnostics,
        namespace_override=args.namespace,
        only="vrrp" if args.vrrp else "checker" if args.check else None,
        pid_files={k: v for k, v in (("vrrp", args.vrrp_pid), ("checker", args.checkers_pid)) if v},
        log_args=_child_log_args(args),
        metrics_listen=args.metrics_listen,
        log_files={
            kind: log_file_name(args.log_file, prog, namespace, config.instance_name)
            for kind, prog in (("vrrp", "vrrp"), ("checker", "check"))
            if args.log_file
        },
    )
    if args.pid:
        try:
            write_file_atomic(args.pid, f"{os.getpid()}\n".encode(), sync=False)
        except OSError as err:
            print(f"kpd start: cannot write pid file {args.pid}: {err}", file=sys.stderr)
            return int(ExitCode.FAILURE)
    try:
        return arbiter.run()
    finally:
        pid_file.unlink(missing_ok=True)
        if args.pid:
            Path(args.pid).unlink(missing_ok=True)


def _child_log_args(args: argparse.Namespace) -> list[str]:
    """The logging options handed on to the children (their log files are named apart)."""
    out: list[str] = []
    if args.log_facility is not None:
        out += ["--log-facility", str(args.log_facility)]
    if args.no_syslog:
        out.append("--no-syslog")
    return out


def cmd_control(args: argparse.Namespace) -> int:
    from keepalived_py.control.client import ControlError, format_status, request

    try:
        body = request(_runtime_dir(args, args.namespace, args.instance), args.command)
    except (ControlError, NamespaceError) as err:
        print(f"kpd {args.command}: {err}", file=sys.stderr)
        return int(ExitCode.FAILURE)
    if args.command == "status":
        if args.json:
            _print_json(body)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(format_status(body))
    else:
        print(body.get("message", "ok"))
    return int(ExitCode.OK)


def cmd_events(args: argparse.Namespace) -> int:
    """``kpd events``: the events in the daemon's ring (``--since``, ``--limit``), one line each; with
    ``--follow`` then every new one until Ctrl-C (exit 0) or the daemon ends the stream (exit 1: it stopped,
    or this reader fell behind; the message says how to resume)."""
    from keepalived_py.control.client import ControlError, event_json, follow, format_event, request

    show = event_json if args.json else format_event
    query = {k: v for k, v in (("since", args.since), ("limit", args.limit)) if v is not None}
    #: the seq to resume after: the last event printed, else the newest the daemon had
    last: list[int] = []

    def check_gap(body: dict[str, object]) -> None:
        oldest, newest = body.get("oldest_seq"), body.get("last_seq")
        if not isinstance(newest, int):
            return
        last[:] = [newest]
        if args.since is None:
            return
        if args.since > newest:
            print(f"kpd events: --since {args.since} is past the newest event ({newest}): "
                  "kpd restarted since?", file=sys.stderr)
        elif isinstance(oldest, int) and oldest > args.since + 1:
            print(f"kpd events: events {args.since + 1}..{oldest - 1} are no longer kept "
                  f"(kpd keeps the last {body.get('ring_size')})", file=sys.stderr)

    try:
        runtime_dir = _runtime_dir(args, args.namespace, args.instance)
        if not args.follow:
            body = request(runtime_dir, "events", query)
            check_gap(body)
            for event in body.get("events", []):
                sys.stdout.write(show(event) + "\n")
            return int(ExitCode.OK)
        try:
            for event in follow(runtime_dir, query, on_answer=check_gap):
                sys.stdout.write(show(event) + "\n")
                sys.stdout.flush()
                if isinstance(event.get("seq"), int):
                    last[:] = [event["seq"]]
        except KeyboardInterrupt:
            return int(ExitCode.OK)  # the usual way to end a follow
    except (ControlError, NamespaceError) as err:
        print(f"kpd events: {err}", file=sys.stderr)
        return int(ExitCode.FAILURE)
    resume = f"; resume with --since {last[0]}" if last else ""
    print(f"kpd events: kpd ended the stream (it stopped, or this reader fell behind){resume}",
          file=sys.stderr)
    return int(ExitCode.FAILURE)


def cmd_genhash(args: argparse.Namespace) -> int:
    from keepalived_py.check import genhash

    return genhash.main(args)


COMMANDS = {
    "check-config": cmd_check_config,
    "lint": cmd_lint,
    "render": cmd_render,
    "start": cmd_start,
    "status": cmd_control,
    "stop": cmd_control,
    "reload": cmd_control,
    "events": cmd_events,
    "genhash": cmd_genhash,
}


#: What a command run as the whole process (:func:`run`) leaves to ``os._exit``: a large configuration is a
#: million objects, which would otherwise be freed one by one just before the exit.
_KEEP_UNTIL_EXIT: list[object] = []


def run() -> NoReturn:
    """The ``kpd`` console script: :func:`main`, then exit without tearing down what it built.

    A large configuration leaves a million objects behind; freeing them one by one at interpreter exit
    would add a quarter of a second to ``kpd check-config``. Output is flushed first.
    """
    code = main(whole_process=True)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def main(argv: Sequence[str] | None = None, *, whole_process: bool = False) -> int:
    """Run one command; its exit code.

    ``whole_process``: the process ends with ``os._exit`` as soon as this returns (:func:`run`).
    ``check-config`` then runs without the cyclic garbage collector: it builds a million objects and no
    garbage cycles worth collecting, and the collector's first pass over them, once reading is over, costs
    a quarter of a second for a large configuration (:func:`keepalived_py.config.load_config` pauses it
    while reading). Its result is left in :data:`_KEEP_UNTIL_EXIT`, for the exit to drop.
    """
    args = build_parser().parse_args(argv)
    args.whole_process = whole_process
    if whole_process and args.command == "check-config":
        gc.disable()
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return int(ExitCode.FAILURE)
    except OSError as err:
        print(f"kpd: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return int(ExitCode.FAILURE)
    except Exception as err:  # a bug in kpd: say so in one line; KPD_DEBUG=1 shows the traceback
        if os.environ.get("KPD_DEBUG"):
            raise
        print(
            f"kpd: internal error: {type(err).__name__}: {err} (run with KPD_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return int(ExitCode.FAILURE)
