"""kpd lint: the nodes of a cluster checked together, each disagreement located in the node's own file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepalived_py.cli import main
from keepalived_py.config.diagnostics import Diagnostic, Severity
from keepalived_py.config.lint import NodeSource, exit_code_of, lint, node_sources, split_config_id
from keepalived_py.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "etc/templates/director-pair.conf.j2"
VARS_A = ROOT / "etc/templates/vars/director-a.yaml"
VARS_B = ROOT / "etc/templates/vars/director-b.yaml"


def node_conf(
    *,
    state: str | None = None,
    priority: int = 100,
    advert_int: str = "1",
    version: int | None = None,
    vips: tuple[str, ...] = ("192.0.2.10/24",),
    auth: tuple[str, str] | None = None,
    src: str | None = None,
    peers: tuple[str, ...] = (),
    nopreempt: bool = False,
    vrid: int = 51,
    real_servers: tuple[tuple[str, int], ...] = (("198.51.100.1", 1), ("198.51.100.2", 1)),
    lb_kind: str = "NAT",
    checker: str = "TCP_CHECK",
    virtual_server: bool = True,
) -> str:
    """One node's keepalived.conf; the defaults make a consistent pair when only the priority differs."""
    lines = ["global_defs {", "    router_id test", "}", "vrrp_instance VI_1 {"]
    if state:
        lines.append(f"    state {state}")
    lines += [
        "    interface eth0",
        f"    virtual_router_id {vrid}",
        f"    priority {priority}",
        f"    advert_int {advert_int}",
    ]
    if version is not None:
        lines.append(f"    version {version}")
    if nopreempt:
        lines.append("    nopreempt")
    if auth:
        lines += [
            "    authentication {",
            f"        auth_type {auth[0]}",
            f"        auth_pass {auth[1]}",
            "    }",
        ]
    if src:
        lines.append(f"    unicast_src_ip {src}")
    if peers:
        lines += ["    unicast_peer {", *(f"        {p}" for p in peers), "    }"]
    lines += ["    virtual_ipaddress {", *(f"        {v}" for v in vips), "    }", "}"]
    if virtual_server:
        lines += [
            "virtual_server 192.0.2.10 80 {",
            "    lb_algo wlc",
            f"    lb_kind {lb_kind}",
            "    protocol TCP",
        ]
        for address, weight in real_servers:
            lines += [f"    real_server {address} 80 {{", f"        weight {weight}"]
            if checker:
                lines += [f"        {checker} {{", "            connect_timeout 3", "        }"]
            lines.append("    }")
        lines.append("}")
    return "\n".join(lines) + "\n"


def write_nodes(tmp_path: Path, *texts: str) -> list[NodeSource]:
    """Each text as node-a, node-b ... in a.conf, b.conf ..."""
    sources = []
    for i, text in enumerate(texts):
        letter = "abcdefghijklmnopqrstuvwxyz"[i]
        path = tmp_path / f"{letter}.conf"
        path.write_text(text)
        sources.append(NodeSource(f"node-{letter}", str(path)))
    return sources


def run_lint(tmp_path: Path, *texts: str) -> tuple[ExitCode, dict[str, list[Diagnostic]]]:
    nodes = lint(write_nodes(tmp_path, *texts))
    return exit_code_of(nodes), {n.source.name: n.diagnostics for n in nodes}


def line_of(path: Path, text: str, nth: int = 1) -> int:
    """The line number of the ``nth`` line of ``path`` containing ``text``."""
    found = [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return found[nth - 1]


def only(diagnostics: dict[str, list[Diagnostic]], node: str) -> Diagnostic:
    """The one diagnostic that is not a note, which must be on ``node``."""
    found = [(name, d) for name, ds in diagnostics.items() for d in ds if d.severity is not Severity.NOTE]
    assert len(found) == 1, found
    assert found[0][0] == node, found
    return found[0][1]


def assert_at(diag: Diagnostic, path: Path, text: str, nth: int = 1) -> None:
    assert diag.location is not None
    assert (diag.location.file, diag.location.line) == (str(path), line_of(path, text, nth)), diag.format()


def no_findings(diagnostics: dict[str, list[Diagnostic]]) -> bool:
    return all(not ds for ds in diagnostics.values())


MASTER = {"state": "MASTER", "priority": 150}


# --- consistent clusters ------------------------------------------------------------------------------------


def test_the_director_pair_template_lints_clean(capsys):
    code = main(["lint", "--template", str(TEMPLATE), "--vars", str(VARS_A), "--vars", str(VARS_B)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "kpd lint: 2 nodes: the nodes agree" in err
    assert "director-a (" in err and "director-b (" in err


def test_a_consistent_pair_passes(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf())
    assert code is ExitCode.OK
    assert no_findings(found)


def test_three_consistent_nodes_pass(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf(priority=100), node_conf(priority=50))
    assert code is ExitCode.OK and no_findings(found)


def test_excluded_addresses_may_differ(tmp_path):
    a = node_conf(**MASTER).replace(
        "virtual_ipaddress {", "virtual_ipaddress_excluded {\n  10.9.9.1/24\n}\n    virtual_ipaddress {"
    )
    code, found = run_lint(tmp_path, a, node_conf())
    assert code is ExitCode.OK and no_findings(found)


# --- VRRP mismatches ----------------------------------------------------------------------------------------


def test_advert_int_mismatch_is_located_and_names_the_other_node(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf(advert_int="2"))
    assert code is ExitCode.CONFIG_ERRORS
    diag = only(found, "node-b")
    assert_at(diag, tmp_path / "b.conf", "advert_int")
    a_line = line_of(tmp_path / "a.conf", "advert_int")
    assert diag.message.startswith(f"VI_1: advert_int 2 here, 1 on node-a ({tmp_path / 'a.conf'}:{a_line})")
    assert "advertisement interval mismatch" in diag.message
    assert any("advert_int 1" in note for note in diag.notes)


def test_a_different_vip_count_names_keepalived_log_line(tmp_path):
    b = node_conf(vips=("192.0.2.10/24", "192.0.2.11/24"))
    code, found = run_lint(tmp_path, node_conf(**MASTER), b)
    assert code is ExitCode.CONFIG_ERRORS
    diag = only(found, "node-b")
    assert_at(diag, tmp_path / "b.conf", "192.0.2.11/24")
    assert "192.0.2.11 here only" in diag.message
    assert "unexpected ip number count" in diag.message and "node-a" in diag.message


def test_other_vips_of_the_same_count_name_keepalived_log_line(tmp_path):
    b = node_conf(vips=("192.0.2.12/24",))
    code, found = run_lint(tmp_path, node_conf(**MASTER), b)
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "b.conf", "192.0.2.12/24")
    assert "192.0.2.10 missing here" in diag.message
    assert "address not present in MASTER advert" in diag.message


def test_a_missing_vip_is_located_at_the_address_list(tmp_path):
    a = node_conf(**MASTER, vips=("192.0.2.10/24", "192.0.2.11/24"))
    c = node_conf(priority=50, vips=("192.0.2.10/24", "192.0.2.11/24"))
    code, found = run_lint(tmp_path, a, node_conf(), c)
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert "192.0.2.11 missing here" in diag.message
    assert diag.location is not None and diag.location.file == str(tmp_path / "b.conf")


def test_a_vip_prefix_mismatch(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf(vips=("192.0.2.10/25",)))
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "b.conf", "192.0.2.10/25")
    assert "virtual address 192.0.2.10/25 here, 192.0.2.10/24 on node-a" in diag.message


def test_version_mismatch(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf(version=3))
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "b.conf", "version 3")
    assert diag.message.startswith("VI_1: VRRP version 3 here, 2 on node-a")


def test_auth_type_mismatch(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER, auth=("PASS", "secret")), node_conf())
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert diag.message.startswith("VI_1: auth_type none here, PASS on node-a")


def test_auth_pass_mismatch_is_located_and_not_shown(tmp_path):
    a = node_conf(**MASTER, auth=("PASS", "secret1"))
    code, found = run_lint(tmp_path, a, node_conf(auth=("PASS", "secret2")))
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "b.conf", "auth_pass")
    assert "auth_pass differs from node-a's" in diag.message
    assert "secret" not in diag.message and not any("secret" in n for n in diag.notes)


def test_passwords_equal_in_their_first_8_characters_agree(tmp_path):
    a = node_conf(**MASTER, auth=("PASS", "12345678a"))
    _, found = run_lint(tmp_path, a, node_conf(auth=("PASS", "12345678b")))
    assert [d for d in found["node-b"] if "auth_pass differs" in d.message] == []


def test_authentication_is_not_compared_in_vrrp_v3(tmp_path):
    a = node_conf(**MASTER, version=3, auth=("PASS", "secret1"))
    _, found = run_lint(tmp_path, a, node_conf(version=3))
    assert not any("auth" in d.message and "node-a" in d.message for d in found["node-b"])


def test_unicast_peer_not_naming_the_other_node(tmp_path):
    a = node_conf(**MASTER, src="10.0.0.1", peers=("10.0.0.2",))
    b = node_conf(src="10.0.0.2", peers=("10.0.0.9",))
    code, found = run_lint(tmp_path, a, b)
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "b.conf", "10.0.0.9")
    src_line = line_of(tmp_path / "a.conf", "unicast_src_ip")
    assert (
        f"does not list node-a's unicast_src_ip 10.0.0.1 ({tmp_path / 'a.conf'}:{src_line})" in diag.message
    )


def test_unicast_peers_naming_each_other_pass(tmp_path):
    a = node_conf(**MASTER, src="10.0.0.1", peers=("10.0.0.2", "10.0.0.3"))
    b = node_conf(src="10.0.0.2", peers=("10.0.0.1", "10.0.0.3"))
    c = node_conf(priority=50, src="10.0.0.3", peers=("10.0.0.1", "10.0.0.2"))
    code, found = run_lint(tmp_path, a, b, c)
    assert code is ExitCode.OK and no_findings(found)


def test_unicast_without_source_address_is_a_note_saying_what_is_not_checked(tmp_path):
    a = node_conf(**MASTER, peers=("10.0.0.2",))
    b = node_conf(src="10.0.0.2", peers=("10.0.0.1",))
    code, found = run_lint(tmp_path, a, b)
    assert code is ExitCode.OK
    (note,) = found["node-a"]
    assert note.severity is Severity.NOTE
    assert "no unicast_src_ip here" in note.message and "eth0" in note.message
    assert found["node-b"] == []


def test_unicast_on_one_node_multicast_on_the_other(tmp_path):
    a = node_conf(**MASTER, src="10.0.0.1", peers=("10.0.0.2",))
    code, found = run_lint(tmp_path, a, node_conf())
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert diag.message.startswith("VI_1: adverts sent multicast to 224.0.0.18 here, unicast on node-a")


def test_two_nodes_in_state_master(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf(state="MASTER", priority=100))
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "b.conf", "state MASTER")
    assert "state MASTER here and on node-a" in diag.message


def test_equal_highest_priorities(tmp_path):
    code, found = run_lint(tmp_path, node_conf(priority=100), node_conf(priority=100), node_conf(priority=50))
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "b.conf", "priority")
    assert "priority 100 here and on node-a" in diag.message and "no single intended master" in diag.message


def test_equal_priorities_with_nopreempt_everywhere_pass(tmp_path):
    code, found = run_lint(tmp_path, node_conf(nopreempt=True), node_conf(nopreempt=True))
    assert code is ExitCode.OK and no_findings(found)


def test_priority_255_on_two_nodes(tmp_path):
    code, found = run_lint(tmp_path, node_conf(priority=255), node_conf(priority=255))
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert "priority 255 (address owner) here and on node-a" in diag.message


def test_state_master_without_the_highest_priority(tmp_path):
    code, found = run_lint(tmp_path, node_conf(state="MASTER", priority=100), node_conf(priority=150))
    diag = only(found, "node-a")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "a.conf", "state MASTER")
    assert "but node-b has priority 150" in diag.message


def test_a_vrid_on_one_node_only(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf(vrid=52))
    assert code is ExitCode.CONFIG_ERRORS
    assert {d.message for ds in found.values() for d in ds} == {
        "VI_1: VRID 51 (IPv4) is on no other node; nothing backs it up",
        "VI_1: VRID 52 (IPv4) is on no other node; nothing backs it up",
    }


def test_interface_names_may_differ_between_hosts(tmp_path):
    b = node_conf().replace("interface eth0", "interface ens3")
    code, found = run_lint(tmp_path, node_conf(**MASTER), b)
    assert code is ExitCode.OK and no_findings(found)


# --- LVS mismatches -----------------------------------------------------------------------------------------


def test_a_virtual_server_missing_on_one_director(tmp_path):
    second = (
        "virtual_server 192.0.2.10 443 {\n    lb_algo wlc\n    lb_kind NAT\n    protocol TCP\n"
        "    real_server 198.51.100.1 443 {\n    }\n}\n"
    )
    code, found = run_lint(tmp_path, node_conf(**MASTER) + second, node_conf())
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert "virtual_server 192.0.2.10:443 TCP is missing here; node-a has it" in diag.message
    assert diag.location is not None and diag.location.file == str(tmp_path / "b.conf")


def test_a_virtual_server_on_one_director_only(tmp_path):
    second = (
        "virtual_server 192.0.2.10 443 {\n    lb_algo wlc\n    lb_kind NAT\n    protocol TCP\n"
        "    real_server 198.51.100.1 443 {\n    }\n}\n"
    )
    _, found = run_lint(tmp_path, node_conf(**MASTER), node_conf() + second)
    diag = only(found, "node-b")
    assert_at(diag, tmp_path / "b.conf", "virtual_server 192.0.2.10 443")
    assert "is here but not on node-a" in diag.message


def test_a_real_server_missing(tmp_path):
    b = node_conf(real_servers=(("198.51.100.1", 1),))
    code, found = run_lint(tmp_path, node_conf(**MASTER), b)
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "b.conf", "virtual_server")
    assert "real_server 198.51.100.2 80 is missing here; node-a has it" in diag.message


def test_a_real_server_weight_differs(tmp_path):
    b = node_conf(real_servers=(("198.51.100.1", 1), ("198.51.100.2", 3)))
    code, found = run_lint(tmp_path, node_conf(**MASTER), b)
    diag = only(found, "node-b")
    assert code is ExitCode.CONFIG_ERRORS
    assert_at(diag, tmp_path / "b.conf", "weight 3")
    assert "real_server 198.51.100.2 80: weight 3 here, 1 on node-a" in diag.message


def test_the_forwarding_method_differs(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf(lb_kind="DR"))
    assert code is ExitCode.CONFIG_ERRORS
    messages = [d.message for d in found["node-b"]]
    assert any("lb_kind DR here, NAT on node-a" in m for m in messages)
    assert any("real_server 198.51.100.1 80: forwarding method DR here, NAT on node-a" in m for m in messages)
    assert found["node-a"] == []


def test_the_checker_types_differ(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf(checker=""))
    assert code is ExitCode.CONFIG_ERRORS
    messages = [d.message for d in found["node-b"]]
    assert len(messages) == 2
    assert all("checkers none here, TCP_CHECK on node-a" in m for m in messages)


def test_a_node_without_virtual_servers_is_noted_not_compared(tmp_path):
    code, found = run_lint(tmp_path, node_conf(**MASTER), node_conf(virtual_server=False))
    assert code is ExitCode.OK
    (note,) = found["node-b"]
    assert note.severity is Severity.NOTE and "not compared as a director" in note.message


# --- three nodes and majorities -----------------------------------------------------------------------------


def test_three_nodes_the_odd_one_out_is_reported(tmp_path):
    code, found = run_lint(
        tmp_path, node_conf(**MASTER, advert_int="3"), node_conf(priority=100), node_conf(priority=50)
    )
    diag = only(found, "node-a")
    assert code is ExitCode.CONFIG_ERRORS
    assert diag.message.startswith("VI_1: advert_int 3 here, 1 on node-b")


def test_three_nodes_the_last_differs(tmp_path):
    _, found = run_lint(
        tmp_path, node_conf(**MASTER), node_conf(priority=100), node_conf(priority=50, advert_int="2")
    )
    diag = only(found, "node-c")
    assert_at(diag, tmp_path / "c.conf", "advert_int")
    assert "1 on node-a" in diag.message


# --- templates, config ids, the command line ----------------------------------------------------------------


def test_a_template_with_two_vars_files_reports_at_the_template_line(tmp_path, capsys):
    vars_b = tmp_path / "lb2.yaml"
    vars_b.write_text(VARS_B.read_text().replace("advert_int: 1", "advert_int: 2"))
    code = main(["lint", "--template", str(TEMPLATE), "--vars", str(VARS_A), "--vars", str(vars_b)])
    err = capsys.readouterr().err
    assert code == 5
    advert_line = line_of(TEMPLATE, "advert_int {{")
    assert f"{TEMPLATE}:{advert_line}:5: warning: VI_WEB: advert_int 2 here, 1 on director-a" in err
    assert f"lb2 ({TEMPLATE} with {vars_b}): configuration has errors but would run" in err


def test_config_ids_pick_each_nodes_lines_of_a_shared_config(tmp_path, capsys):
    shared = node_conf(priority=100).replace(
        "    priority 100\n", "@lb1    state MASTER\n@lb1    priority 150\n@lb2    priority 100\n"
    )
    path = tmp_path / "keepalived.conf"
    path.write_text(shared)
    assert main(["lint", f"{path}@lb1", f"{path}@lb2"]) == 0
    assert "lb1 (" in capsys.readouterr().err
    # Read for the same id twice, both nodes claim to be MASTER.
    assert main(["lint", f"{path}@lb1", f"{path}@lb1"]) == 5
    assert "state MASTER here and on lb1" in capsys.readouterr().err


def test_split_config_id():
    assert split_config_id("a.conf@lb1") == ("a.conf", "lb1")
    assert split_config_id("a.conf") == ("a.conf", None)
    assert split_config_id("dir@x/a.conf") == ("dir@x/a.conf", None)
    assert split_config_id("a.conf@") == ("a.conf@", None)


def test_node_names_come_from_ids_vars_stems_or_paths_and_are_unique():
    sources = node_sources(["a.conf", "a.conf", "b.conf@lb2"], "t.j2", ["vars/x.yaml", "y.yaml@lb9"])
    assert [s.name for s in sources] == ["a.conf", "a.conf#2", "lb2", "x", "lb9"]
    assert sources[3].vars_files == ("vars/x.yaml",) and sources[3].config == "t.j2"
    assert sources[4].config_id == "lb9"


def test_a_node_that_cannot_run_makes_the_lint_exit_4(tmp_path, capsys):
    paths = write_nodes(tmp_path, node_conf(**MASTER), node_conf(auth=("AH", "secret")))
    assert main(["lint", paths[0].config, paths[1].config]) == 4


def test_a_missing_file_makes_the_lint_exit_4(tmp_path, capsys):
    paths = write_nodes(tmp_path, node_conf(**MASTER))
    assert main(["lint", paths[0].config, str(tmp_path / "missing.conf")]) == 4


def test_each_node_is_also_checked_alone(tmp_path, capsys):
    b = node_conf().replace("    advert_int 1\n", "    advert_int 1\n    bogus_keyword 1\n")
    paths = write_nodes(tmp_path, node_conf(**MASTER), b)
    assert main(["lint", paths[0].config, paths[1].config]) == 5
    assert "bogus_keyword" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["lint", "only.conf"], ["lint", "--vars", "a.yaml", "a.conf", "b.conf"], ["lint", "--template", "t.j2"]],
)
def test_bad_command_lines_exit_2(argv, capsys):
    assert main(argv) == ExitCode.USAGE


def test_json_output(tmp_path, capsys):
    paths = write_nodes(tmp_path, node_conf(**MASTER), node_conf(advert_int="2"))
    code = main(["lint", "--json", paths[0].config, f"{paths[1].config}@lb2"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 5 and doc["exit_code"] == 5
    a, b = doc["nodes"]
    assert (a["name"], a["exit_code"], a["cross_node"]) == (paths[0].config, 0, [])
    assert (b["name"], b["config_id"], b["exit_code"]) == ("lb2", "lb2", 5)
    (diag,) = b["cross_node"]
    assert diag["file"] == paths[1].config and diag["line"] == line_of(tmp_path / "b.conf", "advert_int")


# --- property -----------------------------------------------------------------------------------------------


@st.composite
def clusters(draw):
    """N copies of one valid configuration, differing only in what makes each node itself: distinct
    priorities, the highest maybe in state MASTER, and with unicast each its own source address."""
    n = draw(st.integers(2, 5))
    priorities = draw(st.lists(st.integers(1, 254), min_size=n, max_size=n, unique=True))
    master = draw(st.booleans())
    unicast = draw(st.booleans())
    options = {
        "advert_int": str(draw(st.integers(1, 5))),
        "vrid": draw(st.integers(1, 255)),
        "vips": tuple(
            f"192.0.2.{i}/24"
            for i in draw(st.lists(st.integers(1, 250), min_size=1, max_size=4, unique=True))
        ),
        "auth": draw(st.none() | st.tuples(st.just("PASS"), st.text("abcdefgh12", min_size=1, max_size=8))),
        "real_servers": tuple(
            (f"198.51.100.{i}", w)
            for i, w in draw(
                st.dictionaries(st.integers(1, 250), st.integers(0, 10), min_size=1, max_size=4)
            ).items()
        ),
        "lb_kind": draw(st.sampled_from(["NAT", "DR", "TUN"])),
        "checker": draw(st.sampled_from(["TCP_CHECK", ""])),
    }
    texts = []
    for i, priority in enumerate(priorities):
        node = dict(options, priority=priority)
        if master and priority == max(priorities):
            node["state"] = "MASTER"
        if unicast:
            node["src"] = f"10.0.0.{i + 1}"
            node["peers"] = tuple(f"10.0.0.{j + 1}" for j in range(n) if j != i)
        texts.append(node_conf(**node))
    return texts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=clusters())
def test_copies_of_one_config_with_distinct_priorities_never_disagree(tmp_path, texts):
    nodes = lint(write_nodes(tmp_path, *texts))
    assert [d.format() for n in nodes for d in n.cross_node] == []
