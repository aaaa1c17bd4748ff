"""The invalid-configuration corpus: every broken input gives located diagnostics and the right exit code.

Each case is a file ``tests/config/invalid/<case>.conf`` (or ``<case>.conf.j2``, rendered as a Jinja2 template
with the sibling ``<case>.vars.yaml`` when there is one), or a directory ``tests/config/invalid/<case>/``
holding ``main.conf`` (or ``main.conf.j2`` and ``main.vars.yaml``) plus the files it includes. The first lines
of the loaded file are comment headers:

``# expect: [FILE:]LINE:COL: TEXT``
    some diagnostic is located at FILE:LINE:COL (FILE relative to the case directory; the loaded file when
    omitted) and its message contains TEXT (case-insensitive). Each expectation needs a diagnostic of its own.
``# exit: N``
    the exit code of ``kpd check-config`` without host checks, config id ``lb1``.
``# xfail: REASON``
    kpd does not do this right yet; the expectations state what is correct (what keepalived 2.2.7 does).

Other header comments describe the case. Inputs too big to commit (a megabyte-long token, 1000 nested
blocks, 100k lines of garbage, an empty file) are generated at run time.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keepalived_py.cli import main
from keepalived_py.config import Diagnostic, LoadResult, Severity, load_config
from keepalived_py.config.diagnostics import MAX_DIAGNOSTICS

INVALID = Path(__file__).resolve().parent / "invalid"
CONFIG_ID = "lb1"
EXIT_CODES = {0, 4, 5, 6}

_EXPECT = re.compile(r"(?:(?P<file>[^:\s][^:]*):)?(?P<line>\d+):(?P<col>\d+): (?P<text>.+)")


@dataclass(frozen=True)
class Expect:
    file: str | None  # relative to the case directory; None: the loaded file
    line: int
    col: int
    text: str

    def __str__(self) -> str:
        where = f"{self.file}:" if self.file else ""
        return f"{where}{self.line}:{self.col}: {self.text}"


@dataclass
class Case:
    name: str
    path: Path  # the file to load
    base: Path  # FILE in expectations is relative to this directory
    vars_files: list[Path] = field(default_factory=list)
    expects: list[Expect] = field(default_factory=list)
    exit: int | None = None
    xfail: str | None = None


def parse_header(case: Case, data: bytes) -> Case:
    """Fill the expectations from the leading comment lines of ``data``."""
    for raw in data.split(b"\n"):
        if not raw.startswith(b"#"):
            break
        line = raw.decode("utf-8", "replace")[1:].strip()
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "expect":
            m = _EXPECT.fullmatch(value)
            assert m, f"{case.name}: malformed expectation {value!r}"
            case.expects.append(Expect(m["file"], int(m["line"]), int(m["col"]), m["text"]))
        elif key == "exit":
            case.exit = int(value)
        elif key == "xfail":
            case.xfail = value
    assert case.exit is not None, f"{case.name}: no '# exit:' header"
    return case


def discover() -> list[Case]:
    cases = []
    for entry in sorted(INVALID.iterdir()):
        if entry.is_dir():
            mains = [entry / n for n in ("main.conf", "main.conf.j2") if (entry / n).is_file()]
            assert len(mains) == 1, f"{entry}: needs exactly one main.conf or main.conf.j2"
            case = Case(entry.name, mains[0], entry)
            vars_file = entry / "main.vars.yaml"
        elif entry.name.endswith((".conf", ".conf.j2")):
            name = entry.name.removesuffix(".j2").removesuffix(".conf")
            case = Case(name, entry, INVALID)
            vars_file = INVALID / f"{name}.vars.yaml"
        else:
            assert entry.name.endswith(".vars.yaml"), f"unexpected file in the corpus: {entry}"
            continue
        if vars_file.is_file():
            case.vars_files.append(vars_file)
        cases.append(parse_header(case, case.path.read_bytes()))
    return cases


CASES = discover()


def _params(cases: Sequence[Case]) -> list[object]:
    return [
        pytest.param(c, id=c.name, marks=[pytest.mark.xfail(reason=c.xfail, strict=True)] if c.xfail else [])
        for c in cases
    ]


def _matches(exp: Expect, diag: Diagnostic, main_file: Path, base: Path) -> bool:
    loc = diag.location
    if loc is None or (loc.line, loc.col) != (exp.line, exp.col):
        return False
    if exp.text.lower() not in diag.message.lower():
        return False
    want = main_file if exp.file is None else base / exp.file
    return Path(loc.file).resolve() == want.resolve()


def _assign(expects: list[Expect], diags: list[Diagnostic], match: Callable[[Expect, Diagnostic], bool]
            ) -> list[Expect]:
    """The expectations left unmatched when each must match a distinct diagnostic (best assignment)."""
    candidates = [[i for i, d in enumerate(diags) if match(e, d)] for e in expects]
    order = sorted(range(len(expects)), key=lambda k: len(candidates[k]))
    best: list[int] = list(order)

    def search(pos: int, used: set[int], missing: list[int]) -> None:
        nonlocal best
        if len(missing) >= len(best):
            return
        if pos == len(order):
            best = list(missing)
            return
        k = order[pos]
        for i in candidates[k]:
            if i not in used:
                search(pos + 1, used | {i}, missing)
        search(pos + 1, used, [*missing, k])

    search(0, set(), [])
    return [expects[k] for k in best]


def _show(result: LoadResult) -> str:
    return "\n".join(d.format() for d in result.diagnostics) or "(no diagnostics)"


def check_result(
    result: LoadResult, expects: list[Expect], exit_code: int, main_file: Path, base: Path
) -> None:
    missing = _assign(expects, result.diagnostics, lambda e, d: _matches(e, d, main_file, base))
    shown = "; ".join(map(str, missing))
    assert not missing, f"expected diagnostics not found: {shown}\n" + _show(result)
    assert int(result.exit_code) == exit_code, f"exit code {int(result.exit_code)}\n" + _show(result)


def load(path: Path, vars_files: Sequence[Path] = ()) -> LoadResult:
    return load_config(path, vars_files=list(vars_files), config_id=CONFIG_ID, host_checks=False)


# --------------------------------------------------------------------------------------------------------
# The committed corpus


def test_corpus_is_large_enough_and_well_formed():
    assert len(CASES) >= 45
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        assert case.exit in EXIT_CODES, case.name
        if case.exit == 0:
            continue
        assert case.expects, f"{case.name}: a failing case must say which diagnostic it expects"


@pytest.mark.parametrize("case", _params(CASES))
def test_invalid_config_reports_expected_diagnostics_and_exit_code(case: Case):
    result = load(case.path, case.vars_files)
    for diag in result.diagnostics:
        assert diag.location is not None and diag.location.line >= 1, diag.format()
    check_result(result, case.expects, case.exit, case.path, case.base)  # type: ignore[arg-type]


def _cli(path: Path, vars_files: Sequence[Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    argv = ["check-config", "--config", str(path), "--config-id", CONFIG_ID]
    for v in vars_files:
        argv += ["--vars", str(v)]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_check_config_never_prints_a_traceback(case: Case, capsys):
    code, output = _cli(case.path, case.vars_files, capsys)
    assert "Traceback" not in output
    assert code in EXIT_CODES, output


# --------------------------------------------------------------------------------------------------------
# Inputs generated at run time


VRRP_INSTANCE = """vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.1/24
    }
}
"""


def _megabyte_token() -> bytes:
    return b"global_defs {\n    router_id " + b"a" * (1024 * 1024) + b"\n}\n" + VRRP_INSTANCE.encode()


def _nested(depth: int) -> bytes:
    return (b"global_defs {\n" * depth) + (b"}\n" * depth)


def _garbage(lines: int) -> bytes:
    """Random lines of the characters that matter to the lexer (braces, quotes, comments, $, @, ~, \\).

    No line starts with a backslash: keepalived 2.2.7 -t segfaults on a line starting with ``\\!``, and these
    inputs are meant to have an oracle (keepalived -t exits 5 on them).
    """
    rnd = random.Random(20220116)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_ ./:-\t{}\"#!$@~=\\"
    out = []
    for _ in range(lines):
        line = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
        out.append(("x" + line if line.lstrip(" \t").startswith("\\") else line) + "\n")
    return "".join(out).encode()


@dataclass(frozen=True)
class Generated:
    name: str
    make: Callable[[], bytes]
    expects: tuple[Expect, ...]
    exit: int
    xfail: str | None = None


FATAL_POLICY = "keepalived 2.2.7 -t reads it and exits 5 (errors, but it runs)"
GENERATED = [
    Generated("empty_file", lambda: b"", (), 0),
    Generated("blank_lines_only", lambda: b"\n \n\t\n\r\n" * 1000, (), 0),
    Generated(
        "megabyte_token",
        _megabyte_token,
        (Expect(None, 2, 1, "bytes long"), Expect(None, 2, 15, "longer than 4096")),
        5,
    ),
    Generated(
        "nesting_1000_levels",
        lambda: _nested(1000),
        (Expect(None, 2, 1, "unknown keyword 'global_defs' in global_defs"),),
        5,
    ),
    Generated(
        "garbage_100k_lines",
        lambda: _garbage(100_000),
        (),
        5,
    ),
]


def _write(gen: Generated, tmp_path: Path) -> Path:
    path = tmp_path / f"{gen.name}.conf"
    path.write_bytes(gen.make())
    return path


@pytest.mark.timeout(20)
@pytest.mark.parametrize("gen", GENERATED, ids=lambda g: g.name)
def test_generated_input_is_handled_in_bounded_time_and_space(gen: Generated, tmp_path):
    result = load(_write(gen, tmp_path))
    assert len(result.diagnostics) <= MAX_DIAGNOSTICS
    for diag in result.diagnostics:
        assert diag.location is not None and diag.location.line >= 1, diag.format()
        assert len(diag.format()) < 2000, "a diagnostic must not echo a huge line"
    if gen.exit == 0:
        assert all(d.severity is Severity.NOTE for d in result.diagnostics), _show(result)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "gen",
    [
        pytest.param(g, id=g.name, marks=[pytest.mark.xfail(reason=g.xfail, strict=True)] if g.xfail else [])
        for g in GENERATED
    ],
)
def test_generated_input_reports_expected_diagnostics_and_exit_code(gen: Generated, tmp_path):
    path = _write(gen, tmp_path)
    check_result(load(path), list(gen.expects), gen.exit, path, tmp_path)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("gen", GENERATED, ids=lambda g: g.name)
def test_check_config_never_prints_a_traceback_for_generated_input(gen: Generated, tmp_path, capsys):
    code, output = _cli(_write(gen, tmp_path), (), capsys)
    assert "Traceback" not in output
    assert code in EXIT_CODES
