"""Tests for keepalived_py.config.lexer: keepalived.conf up to logical lines of located tokens."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepalived_py.config import lexer
from keepalived_py.config.diagnostics import DiagnosticSink, Location, Severity
from keepalived_py.config.lexer import Line, Token, read_config

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "keepalived-samples"

FATAL, ERROR, NOTE = Severity.FATAL, Severity.ERROR, Severity.NOTE


# ---------------------------------------------------------------------------------------------------------
# helpers


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def lex(
    tmp_path: Path, text: str | bytes, config_id: str = "node1", name: str = "keepalived.conf"
) -> tuple[list[Line], DiagnosticSink, str]:
    """Write *text* to a file, lex it: (lines, sink, file name as reported)."""
    path = write(tmp_path / name, text)
    sink = DiagnosticSink()
    return read_config(path, config_id=config_id, sink=sink), sink, str(path)


def words(lines: list[Line]) -> list[list[str]]:
    return [[t.text for t in line.tokens] for line in lines]


def positions(lines: list[Line]) -> list[list[tuple[int, int]]]:
    return [[(t.loc.line, t.loc.col) for t in line.tokens] for line in lines]


def diags(sink: DiagnosticSink) -> list[tuple[Severity, str, int | None, int | None]]:
    return [
        (
            d.severity,
            d.message,
            d.location.line if d.location else None,
            d.location.col if d.location else None,
        )
        for d in sink
    ]


def only(sink: DiagnosticSink, severity: Severity | None = None) -> tuple[str, int | None, int | None]:
    """The one diagnostic (of *severity*): (message, line, col)."""
    found = [d for d in diags(sink) if severity is None or d[0] is severity]
    assert len(found) == 1, diags(sink)
    return found[0][1], found[0][2], found[0][3]


# ---------------------------------------------------------------------------------------------------------
# words, columns, comments


def test_empty_file_gives_no_lines_and_no_diagnostics(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "")
    assert lines == [] and len(sink) == 0


def test_tokens_carry_file_line_column_and_source_line(tmp_path: Path) -> None:
    lines, sink, name = lex(tmp_path, "global_defs {\n   router_id  LVS_1\n}\n")
    assert words(lines) == [["global_defs", "{"], ["router_id", "LVS_1"], ["}"]]
    assert positions(lines) == [[(1, 1), (1, 13)], [(2, 4), (2, 15)], [(3, 1)]]
    assert lines[1].tokens[1].loc == Location(name, 2, 15, "   router_id  LVS_1")
    assert lines[1].loc == lines[1].tokens[0].loc
    assert len(sink) == 0


def test_tab_counts_as_one_column_and_crlf_is_stripped(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "\tstate\tMASTER\r\n")
    assert words(lines) == [["state", "MASTER"]]
    assert positions(lines) == [[(1, 2), (1, 8)]]
    assert lines[0].tokens[0].loc.text == "\tstate\tMASTER"
    assert len(sink) == 0


def test_plain_lines_of_a_clean_file_read_as_any_other_file(tmp_path: Path) -> None:
    """A clean file (UTF-8, no CR) takes a fast path for its plain lines; CRLF line ends take the general
    one: the same tokens, columns and source lines either way."""
    text = (
        "$A=1\n$M=x \\\n  y\nplain {\n  word $A\n}\n\nkey \"q\" # c\nx included y\n"
        "~SEQ(i, 2) w $i\n@node1 a b\nglued{ }\n! a comment at the end"
    )
    fast, fast_sink, _ = lex(tmp_path, text)
    slow, slow_sink, _ = lex(tmp_path, text.replace("\n", "\r\n"), name="crlf.conf")
    assert words(fast) == words(slow) and positions(fast) == positions(slow)
    sources = [[t.loc.text for t in line.tokens] for line in fast]
    assert sources == [[t.loc.text for t in line.tokens] for line in slow]
    assert [d.message for d in fast_sink] == [d.message for d in slow_sink]


#: what Python's str.split() takes for white space and keepalived does not
OTHER_SPACES = [chr(c) for c in range(0x3001) if chr(c).isspace() and chr(c) not in " \t\n\v\f\r"]


@pytest.mark.parametrize("space", OTHER_SPACES)
def test_only_keepalived_s_white_space_separates_words(tmp_path: Path, space: str) -> None:
    """Python's str.split() also splits at U+00A0, U+2000... keepalived does not, nor does kpd."""
    lines, _, _ = lex(tmp_path, f"router_id a{space}b\n")
    assert words(lines) == [["router_id", f"a{space}b"]]


def test_numbers_of_lines_with_a_pattern() -> None:
    pattern = re.compile("#")
    assert list(lexer._numbers_of_lines_with(pattern, "a\n#b#\nc\n\nd#")) == [2, 5]
    assert list(lexer._numbers_of_lines_with(pattern, "#\n#\n")) == [1, 2]
    assert list(lexer._numbers_of_lines_with(pattern, "none\n")) == []


def test_form_feed_and_vertical_tab_separate_words(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "a\fb\vc\rd\n")
    assert words(lines) == [["a", "b", "c", "d"]]


def test_blank_and_comment_only_lines_produce_nothing(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "\n   \n# comment\n  ! other comment\nx\n")
    assert words(lines) == [["x"]]
    assert positions(lines) == [[(5, 1)]]
    assert len(sink) == 0


def test_hash_and_bang_start_trailing_comments(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "a b # c d\ne!f g\n")
    assert words(lines) == [["a", "b"], ["e"]]


def test_comment_characters_inside_quotes_are_kept(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, 'auth_pass "se#cr!t" # real comment\n')
    assert words(lines) == [["auth_pass", "se#cr!t"]]


def test_escaped_hash_and_bang_are_literal_outside_quotes(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, 'q\\#r a\\!b "c\\#d"\n')
    assert words(lines) == [["q#r", "a!b", "c\\#d"]]
    assert positions(lines) == [[(1, 1), (1, 6), (1, 11)]]


def test_trailing_backslash_is_glued_to_the_word_before_it(tmp_path: Path) -> None:
    # keepalived's decomment() removes the blanks before a final backslash (line continuation is only
    # for definitions)
    lines, _, _ = lex(tmp_path, "foo   \\\nbar\n")
    assert words(lines) == [["foo\\"], ["bar"]]
    assert positions(lines) == [[(1, 1)], [(2, 1)]]


# ---------------------------------------------------------------------------------------------------------
# quoting


def test_quoted_string_is_one_word_without_its_quotes(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, 'script "/bin/check --all  now"\n')
    assert words(lines) == [["script", "/bin/check --all  now"]]
    assert [t.quoted for t in lines[0].tokens] == [False, True]
    assert positions(lines) == [[(1, 1), (1, 8)]]


def test_adjacent_quoted_and_unquoted_parts_join_into_one_word(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, 'x ab"c d"e "p""q"\n')
    assert words(lines) == [["x", "abc de", "pq"]]
    assert [t.quoted for t in lines[0].tokens] == [False, True, True]
    assert positions(lines) == [[(1, 1), (1, 3), (1, 12)]]


def test_empty_quotes_are_an_empty_word(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, 'smtp_helo_name ""\n')
    assert words(lines) == [["smtp_helo_name", ""]]
    assert lines[0].tokens[1].quoted


def test_single_quotes_and_backslashes_are_ordinary_characters(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "auth_pass it's a\\tb\n")
    assert words(lines) == [["auth_pass", "it's", "a\\tb"]]
    assert len(sink) == 0


def test_quoted_brace_is_a_word_not_a_brace(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, 'a "{" "}" {\n')
    toks = lines[0].tokens
    assert [(t.text, t.is_open, t.is_close) for t in toks] == [
        ("a", False, False),
        ("{", False, False),
        ("}", False, False),
        ("{", True, False),
    ]


def test_unterminated_quote_is_an_error_at_the_opening_quote(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, 'ok\nnotify_master "/bin/x arg\nnext\n')
    assert words(lines) == [["ok"], ["notify_master"], ["next"]]
    assert only(sink, ERROR) == ("unterminated quoted string: missing closing '\"'", 2, 15)


def test_unterminated_quote_keeps_the_text_before_it_as_a_word(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, 'a ab"cd\n')
    assert words(lines) == [["a", "ab"]]
    assert only(sink, ERROR)[1:] == (1, 5)


# ---------------------------------------------------------------------------------------------------------
# braces


def test_braces_are_tokens_of_their_own_even_when_attached(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "foo{\na{b}c\n}}\n")
    assert words(lines) == [["foo", "{"], ["a", "{", "b", "}", "c"], ["}", "}"]]
    assert positions(lines) == [[(1, 1), (1, 4)], [(2, 1), (2, 2), (2, 3), (2, 4), (2, 5)], [(3, 1), (3, 2)]]
    assert lines[0].tokens[1].is_open and lines[2].tokens[0].is_close


def test_one_line_block_stays_on_one_line(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "group { VI_1 VI_2 }\n")
    assert words(lines) == [["group", "{", "VI_1", "VI_2", "}"]]


def test_opening_brace_on_the_next_line_is_a_line_of_its_own(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "vrrp_instance VI_1\n{\n}\n")
    assert words(lines) == [["vrrp_instance", "VI_1"], ["{"], ["}"]]


def test_text_after_a_brace_is_examined_again_like_a_new_line(tmp_path: Path) -> None:
    # keepalived cuts lines at braces and handles the rest as a new line: @, $NAME= and include apply
    text = "a } @node1 b\nc { @other d }\ne { $V=v1 v2\nuse $V\n"
    lines, sink, _ = lex(tmp_path, text)
    assert words(lines) == [["a", "}", "b"], ["c", "{"], ["e", "{"], ["use", "v1", "v2"]]
    assert positions(lines)[0] == [(1, 1), (1, 3), (1, 12)]
    assert len(sink) == 0


def test_include_after_a_brace_takes_the_rest_of_the_line(tmp_path: Path) -> None:
    write(tmp_path / "rs.conf", "real_server\n")
    lines, sink, _ = lex(tmp_path, "vs {  include rs.conf\n}\n")
    assert words(lines) == [["vs", "{"], ["real_server"], ["}"]]
    assert len(sink) == 0


def test_braces_re_examined_per_line_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer, "MAX_RESIDUES", 2)
    lines, sink, _ = lex(tmp_path, "a { @node1 b { @node1 c { @node1 d\n")
    assert words(lines) == [["a", "{", "b", "{", "c", "{", "@node1", "d"]]
    assert only(sink) == (
        "more than 2 braces on this line: the rest is not checked for @, $, ~ and include",
        1,
        27,
    )


# ---------------------------------------------------------------------------------------------------------
# conditional lines


def test_conditional_line_is_kept_only_for_its_config_id(tmp_path: Path) -> None:
    text = "@high priority 170\n@low\tpriority 85\n@^high nopreempt\n"
    lines, sink, _ = lex(tmp_path, text, config_id="high")
    assert words(lines) == [["priority", "170"]]
    assert positions(lines) == [[(1, 7), (1, 16)]]
    lines, _, _ = lex(tmp_path, text, config_id="low")
    assert words(lines) == [["priority", "85"], ["nopreempt"]]
    assert positions(lines) == [[(2, 6), (2, 15)], [(3, 8)]]
    assert len(sink) == 0


def test_conditional_with_nothing_after_the_id_drops_the_line(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "@node1\n@node1   \nx\n")
    assert words(lines) == [["x"]] and len(sink) == 0


def test_indented_conditional_applies(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "   @node1 a\n\t@other b\n")
    assert words(lines) == [["a"]]


def test_conditional_block_line_drops_its_brace_too(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "@other vrrp_instance X {\n state MASTER\n}\n")
    assert words(lines) == [["state", "MASTER"], ["}"]]


def test_conditional_definition(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$P=1\n@node1 $P=2\n@other $P=3\np $P\n")
    assert words(lines) == [["p", "2"]]


# ---------------------------------------------------------------------------------------------------------
# definitions


def test_definition_is_substituted_in_both_forms_and_located_at_the_dollar(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "$IP=10.0.0.1\nvirtual_server $IP 80\nx ${IP}/24\n")
    assert words(lines) == [["virtual_server", "10.0.0.1", "80"], ["x", "10.0.0.1/24"]]
    assert positions(lines) == [[(2, 1), (2, 16), (2, 20)], [(3, 1), (3, 3)]]
    assert lines[0].tokens[2].loc.text == "virtual_server $IP 80"
    assert len(sink) == 0


def test_value_words_are_all_located_at_the_reference(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$W=a b c\nk $W z\n")
    assert words(lines) == [["k", "a", "b", "c", "z"]]
    assert positions(lines) == [[(2, 1), (2, 3), (2, 3), (2, 3), (2, 6)]]


def test_dollar_name_is_substituted_only_before_blank_comma_paren_or_end(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "$X=1\na $X,$X) $X\tb $X/24\n")
    assert words(lines) == [["a", "1,1)", "1", "b", "$X/24"]]
    message, line, col = only(sink)
    assert (line, col) == (2, 15)
    assert message.startswith("'$X' is followed by '/' and is not substituted") and "'${X}'" in message


def test_blank_before_equals_is_not_a_definition(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "$A = 1\n")
    assert words(lines) == [["$A", "=", "1"]]
    assert only(sink, ERROR) == ("'$A' is not defined; it is left as it is", 1, 1)


def test_undefined_reference_is_an_error_and_left_as_it_is(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "router_id $HOST\n")
    assert words(lines) == [["router_id", "$HOST"]]
    assert only(sink) == ("'$HOST' is not defined; it is left as it is", 1, 11)
    assert not sink.has_fatal


def test_undefined_braced_reference_splits_at_its_braces_like_keepalived(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "${UNDEF} u\n")
    assert words(lines) == [["$", "{", "UNDEF", "}", "u"]]
    assert only(sink) == ("'${UNDEF}' is not defined; it is left as it is", 1, 1)


def test_dollar_not_followed_by_a_name_is_plain_text(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "auth_pass $1$ab$$ 5$\n")
    assert words(lines) == [["auth_pass", "$1$ab$$", "5$"]]
    assert only(sink)[0] == "'$ab' is not defined; it is left as it is"


def test_definitions_are_expanded_when_used_not_when_defined(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$D=$E\n$E=first\na $D\n$E=second\nb $D\n")
    assert words(lines) == [["a", "first"], ["b", "second"]]


def test_definitions_can_build_names_dynamically(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$N=2\n$V${N}=two\nv $V2\n")
    assert words(lines) == [["v", "two"]]


def test_multiline_definition_expands_into_following_lines(tmp_path: Path) -> None:
    text = "$SRV=real_server 1.1.1.1 80 { \\\n   weight 1 \\\n}\nvirtual_server x {\n    $SRV\n}\n"
    lines, sink, _ = lex(tmp_path, text)
    assert words(lines) == [
        ["virtual_server", "x", "{"],
        ["real_server", "1.1.1.1", "80", "{"],
        ["weight", "1"],
        ["}"],
        ["}"],
    ]
    assert positions(lines)[1:4] == [[(5, 5)] * 4, [(5, 5)] * 2, [(5, 5)]]
    assert len(sink) == 0


def test_multiline_definition_only_expands_at_the_end_of_a_line(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "$M=a \\\nb\n$M post\npre $M\n")
    assert words(lines) == [["$M", "post"], ["pre", "a"], ["b"]]
    assert only(sink) == (
        "multi-line definition '$M' is only substituted at the end of a line; it is left as it is",
        3,
        1,
    )


def test_multiline_definition_ends_at_an_empty_line_but_not_at_a_comment_line(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$M=m1 \\\n# comment\n   \nm2 \\\n\nm3\nuse $M\n")
    assert words(lines) == [["m3"], ["use", "m1"], ["m2"]]


def test_definition_empty_before_its_last_line_is_a_one_line_definition(tmp_path: Path) -> None:
    # keepalived decides "multi-line" when the last line comes: $A=\\ then one line is a plain definition
    lines, _, _ = lex(tmp_path, "$A= \\\nx y\n$B=\\\np \\\nq\nuse $A z\nuse $B\n")
    assert words(lines) == [["use", "x", "y", "z"], ["use", "p"], ["q"]]


def test_comment_ending_in_backslash_continues_a_definition_like_keepalived(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$C=c1 # note \\\nc2\nuse $C\n")
    assert words(lines) == [["use", "c1"], ["c2"]]


def test_builtin_definitions(tmp_path: Path) -> None:
    text = "a $_INSTANCE\nb $_PWD\nc ${_RANDOM 5 5}\nd $_BANG\ne $_HASH f\n"
    lines, sink, _ = lex(tmp_path, text, config_id="lb1")
    # a "#" that comes from a definition starts a comment: keepalived de-comments after substituting
    assert words(lines) == [["a", "lb1"], ["b", str(tmp_path)], ["c", "5"], ["d"], ["e"]]
    assert len(sink) == 0


def test_builtin_definitions_can_be_overridden(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$_INSTANCE=mine\na $_INSTANCE\n")
    assert words(lines) == [["a", "mine"]]


def test_substitution_result_is_rechecked_for_conditionals(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$C=@node1\n$D=@other\n$C yes\n$D no\n")
    assert words(lines) == [["yes"]]


def test_line_starting_with_tilde_is_not_substituted(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "$X=1\n~x $X\n")
    assert words(lines) == [["~x", "$X"]]
    assert len(sink) == 0


def test_recursive_definition_is_fatal_and_fast(tmp_path: Path) -> None:
    start = time.monotonic()
    lines, sink, _ = lex(tmp_path, "$A=$A\nfoo $A\nbar\n")
    assert time.monotonic() - start < 5
    assert words(lines) == [["bar"]]
    message, line, col = only(sink)
    assert (line, col) == (2, 5) and "recursive definition?" in message


def test_growing_recursive_definition_is_fatal(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "$A=x $A\nfoo $A\n")
    assert lines == [] and sink.has_fatal


def test_exponential_definition_bomb_is_capped(tmp_path: Path) -> None:
    text = "".join(f"$L{i}=" + f"${{L{i + 1}}}" * 10 + "\n" for i in range(12)) + "$L12=xxxxxxxxxx\nfoo $L0\n"
    start = time.monotonic()
    lines, sink, _ = lex(tmp_path, text)
    assert time.monotonic() - start < 5
    assert lines == []
    limit = lexer.MAX_EXPANSIONS_PER_LINE
    assert only(sink) == (
        f"more than {limit} definition references on one line (recursive definition?)",
        14,
        5,
    )


def test_expansion_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer, "MAX_LINE_CHARS", 1000)
    lines, sink, _ = lex(tmp_path, "$B=" + "x" * 600 + "\nfoo $B $B\nok $B\n")
    assert words(lines) == [["ok", "x" * 600]]
    assert only(sink, FATAL) == (
        "definition substitution makes this line more than 1000 characters longer (recursive definition?)",
        2,
        1,
    )


def test_substituted_line_longer_than_keepalived_buffer_is_an_error(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "$B=" + "x" * 600 + "\nfoo $B $B\n")
    assert words(lines) == [["foo", "x" * 600, "x" * 600]]
    assert only(sink) == (
        "after substitution this line is 1205 characters long: keepalived stops substituting at 1023",
        2,
        1,
    )


# ---------------------------------------------------------------------------------------------------------
# ~SEQ and ~LST


def test_seq_with_start_step_end_repeats_the_line(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "~SEQ(i, 1, 2, 5) real_server 10.0.0.${i} $i\n")
    assert words(lines) == [
        ["real_server", "10.0.0.1", "1"],
        ["real_server", "10.0.0.3", "3"],
        ["real_server", "10.0.0.5", "5"],
    ]
    assert positions(lines)[0] == [(1, 18), (1, 30), (1, 42)]
    assert len(sink) == 0


def test_seq_short_forms_and_directions(tmp_path: Path) -> None:
    text = "~SEQ(i,3) a$i\n~SEQ(i,0) b$i\n~SEQ(i,-2) c$i\n~SEQ(i,5,3) d$i\n~SEQ(i,5,-2,1) e$i\n"
    text = text.replace("$i", "${i}")
    lines, sink, _ = lex(tmp_path, text)
    assert [w[0] for w in words(lines)] == [
        *["a1", "a2", "a3"],
        *["b1", "b0"],
        *["c-1", "c-2"],
        *["d5", "d4", "d3"],
        *["e5", "e3", "e1"],
    ]
    assert len(sink) == 0


def test_seq_numbers_are_read_like_c_strtol(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "~SEQ(i,010,010) o${i}\n~SEQ(i,0x10,0x10) h${i}\n")
    assert words(lines) == [["o8"], ["h16"]]


def test_seqx_counts_in_hex(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "~SEQx(i,9,11) fe80::${i}\n")
    assert words(lines) == [["fe80::9"], ["fe80::a"], ["fe80::b"]]


def test_seq_variable_keeps_its_last_value_afterwards(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "~SEQ(i,1,2) x\nafter $i\n")
    assert words(lines) == [["x"], ["x"], ["after", "2"]]


def test_nested_seq(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "~SEQ(i,1,2) ~SEQ(j,1,2) p ${i}${j}\n")
    assert words(lines) == [["p", "11"], ["p", "12"], ["p", "21"], ["p", "22"]]


def test_seq_parameters_may_be_definitions(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$FIRST=4\n$LAST=5\n~SEQ(n, $FIRST, $LAST) s$n\n")
    assert words(lines) == [["s4"], ["s5"]]


def test_seq_in_a_definition_sees_its_variable_unexpanded(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "$Q=~SEQ(k,1,2) q $k\n$Q\n")
    assert words(lines) == [["q", "1"], ["q", "2"]]


def test_seq_can_generate_blocks(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "~SEQ(i,1,2) vrrp_instance VI_${i} { virtual_router_id $i }\n")
    assert words(lines) == [
        ["vrrp_instance", "VI_1", "{", "virtual_router_id", "1", "}"],
        ["vrrp_instance", "VI_2", "{", "virtual_router_id", "2", "}"],
    ]


def test_conditional_seq(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "@other ~SEQ(i,1,3) a\n@node1 ~SEQ(i,1,2) b\n")
    assert words(lines) == [["b"], ["b"]]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("~SEQ i,1,2) x", "invalid ~SEQ specification: '(' expected after ~SEQ"),
        ("~SEQ(i) x", "invalid ~SEQ specification: expected ~SEQ(variable, [start,] [step,] end)"),
        ("~SEQ(i,1,2 x", "invalid ~SEQ specification: missing ')'"),
        ("~SEQ(i,1,0,5) x", "invalid ~SEQ specification: the step does not lead from start to end"),
        ("~SEQ(i,5,1,1) x", "invalid ~SEQ specification: the step does not lead from start to end"),
        ("~SEQ(i,1,2,3,4) x", "invalid ~SEQ specification: expected ~SEQ(variable, [start,] [step,] end)"),
        ("~SEQx(i,-1,2) x", "invalid ~SEQ specification: ~SEQx is only valid for positive numbers"),
        ("~SEQUENCE(i,1) x", "invalid ~SEQ specification: '(' expected after ~SEQ"),
    ],
)
def test_invalid_seq_is_an_error_at_the_tilde(tmp_path: Path, line: str, message: str) -> None:
    lines, sink, _ = lex(tmp_path, "  " + line + "\nnext\n")
    assert words(lines) == [["next"]]
    assert only(sink) == (message, 1, 3)
    assert not sink.has_fatal


def test_huge_seq_is_capped_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer, "MAX_GENERATED_LINES", 1000)
    start = time.monotonic()
    lines, sink, _ = lex(tmp_path, "~SEQ(i, 1, 9223372036854775807) x\nafter\n")
    assert time.monotonic() - start < 5
    assert len(lines) == 1001 and words(lines)[-1] == ["after"]
    assert only(sink) == (
        "~SEQ/~LST and multi-line definitions generate more than 1000 lines; the rest are not generated",
        1,
        1,
    )


def test_self_generating_seq_is_stopped_by_the_nesting_cap(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "$S=~SEQ(i,1,1) $S\n$S\nafter\n")
    assert words(lines) == [["after"]]
    assert only(sink, FATAL)[0] == (
        f"includes, ~SEQ/~LST and multi-line definitions nested more than {lexer.MAX_NESTING_DEPTH} deep"
    )


def test_lst_with_one_variable(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "~LST(v, eth0, , eth2) interface ${v}\n")
    assert words(lines) == [["interface", "eth0"], ["interface"], ["interface", "eth2"]]
    assert positions(lines)[0] == [(1, 23), (1, 33)]
    assert len(sink) == 0


def test_lst_with_several_variables_missing_values_are_empty(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "~LST({a, b}, {1, 2}, {3}, 4) l_${a}_${b}\n")
    assert words(lines) == [["l_1_2"], ["l_3_"], ["l_4_"]]


def test_lst_with_too_many_values_is_an_error(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "~LST({a}, {1, 2}) x\n")
    assert lines == []
    assert only(sink) == ("invalid ~LST specification: too many values", 1, 1)


# ---------------------------------------------------------------------------------------------------------
# includes


def test_include_is_relative_to_the_including_file_and_located_in_it(tmp_path: Path) -> None:
    inc = write(tmp_path / "conf.d" / "vrrp.conf", "\n  vrrp_instance VI_1\n")
    lines, sink, _ = lex(tmp_path, "before\ninclude conf.d/vrrp.conf\nafter\n")
    assert words(lines) == [["before"], ["vrrp_instance", "VI_1"], ["after"]]
    assert lines[1].tokens[1].loc == Location(str(inc), 2, 17, "  vrrp_instance VI_1")
    assert lines[2].loc.line == 3
    assert len(sink) == 0


def test_include_glob_reads_matches_in_sorted_order(tmp_path: Path) -> None:
    for name in ("b.conf", "a.conf", "c.txt", ".hidden.conf"):
        write(tmp_path / "d" / name, name + "\n")
    lines, sink, _ = lex(tmp_path, "include d/*.conf\n")
    assert words(lines) == [["a.conf"], ["b.conf"]]
    assert len(sink) == 0


def test_include_brace_alternatives_in_order(tmp_path: Path) -> None:
    write(tmp_path / "x.conf", "x\n")
    write(tmp_path / "y.conf", "y\n")
    lines, _, _ = lex(tmp_path, "include {y,x}.conf\n")
    assert words(lines) == [["y"], ["x"]]


def test_nested_include_is_relative_to_the_nested_file(tmp_path: Path) -> None:
    write(tmp_path / "a" / "one.conf", "one\ninclude b/two.conf\n")
    two = write(tmp_path / "a" / "b" / "two.conf", "two\n")
    lines, sink, _ = lex(tmp_path, "include a/one.conf\n")
    assert words(lines) == [["one"], ["two"]]
    assert lines[1].loc.file == str(two)
    assert len(sink) == 0


def test_absolute_include(tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere" / "x.conf", "x\n")
    lines, _, _ = lex(tmp_path / "top", f"include {other}\n")
    assert words(lines) == [["x"]]


def test_definitions_persist_across_includes(tmp_path: Path) -> None:
    write(tmp_path / "defs.conf", "$PRIO=150\n")
    lines, _, _ = lex(tmp_path, "include defs.conf\npriority $PRIO\n")
    assert words(lines) == [["priority", "150"]]


def test_include_pattern_may_use_definitions_and_conditionals(tmp_path: Path) -> None:
    write(tmp_path / "node1.conf", "n1\n")
    write(tmp_path / "other.conf", "o\n")
    lines, _, _ = lex(tmp_path, "@node1 include ${_INSTANCE}.conf\n@^node1 include other.conf\n")
    assert words(lines) == [["n1"]]


def test_includes_from_seq_lines_are_read_after_the_seq_last_first(tmp_path: Path) -> None:
    # keepalived pushes each generated include on its file stack and reads the files once the ~SEQ is done
    for n in (1, 2):
        write(tmp_path / f"i{n}.conf", f"inc{n}\n")
    lines, _, _ = lex(tmp_path, "first\n~SEQ(n,1,2) include i${n}.conf\nafter\n")
    assert words(lines) == [["first"], ["inc2"], ["inc1"], ["after"]]


def test_include_cycle_is_an_error_at_the_include_line_and_names_the_cycle(tmp_path: Path) -> None:
    top = tmp_path / "keepalived.conf"
    b = write(tmp_path / "b.conf", "in_b\ninclude keepalived.conf\n")
    lines, sink, _ = lex(tmp_path, "top\n  include b.conf\n")
    assert words(lines) == [["top"], ["in_b"]]
    assert only(sink, ERROR) == (f"include cycle: {top} -> {b} -> {top}; not read again", 2, 9)
    assert sink.diagnostics[0].location is not None and sink.diagnostics[0].location.file == str(b)


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    lines, sink, name = lex(tmp_path, "include keepalived.conf\nx\n")
    assert words(lines) == [["x"]]
    assert only(sink, ERROR) == (f"include cycle: {name} -> {name}; not read again", 1, 9)


def test_including_the_same_file_twice_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "s.conf", "s\n")
    lines, sink, _ = lex(tmp_path, "include s.conf\ninclude s.conf\n")
    assert words(lines) == [["s"], ["s"]] and len(sink) == 0


def test_missing_include_file_is_a_note_at_the_pattern_as_keepalived_runs_without_it(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "include  missing.conf\nx\n")
    assert words(lines) == [["x"]]
    assert only(sink, NOTE) == (f"included file '{tmp_path / 'missing.conf'}' not found; skipped", 1, 10)


def test_quoted_include_pattern_is_not_unquoted(tmp_path: Path) -> None:
    write(tmp_path / "q.conf", "q\n")
    lines, sink, _ = lex(tmp_path, 'include "q.conf"\n')
    assert lines == []
    message = only(sink, NOTE)[0]
    assert message.endswith("not found (quotes are not removed from include patterns); skipped")


def test_glob_matching_nothing_is_a_note(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    lines, sink, _ = lex(tmp_path, "include conf.d/*.conf\ninclude nodir/*.conf\nx\n")
    assert words(lines) == [["x"]]
    assert diags(sink) == [
        (NOTE, "include pattern 'conf.d/*.conf' matches no files", 1, 9),
        (NOTE, "include pattern 'nodir/*.conf' matches no files (its directory does not exist)", 2, 9),
    ]
    assert not sink.has_fatal


def test_includew_glob_matching_nothing_is_fatal(tmp_path: Path) -> None:
    _, sink, _ = lex(tmp_path, "includew *.nothing\n")
    assert only(sink) == ("include pattern '*.nothing' matches no files", 1, 10)
    assert sink.has_fatal


def test_include_of_a_directory_is_fatal(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _, sink, _ = lex(tmp_path, "include sub\n")
    assert only(sink) == (f"included file '{tmp_path / 'sub'}' is a directory", 1, 9)
    assert sink.has_fatal


def test_directory_matched_by_a_wildcard_is_skipped_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub.conf").mkdir(parents=True)
    write(tmp_path / "d" / "a.conf", "a\n")
    lines, sink, _ = lex(tmp_path, "include d/*.conf\n")
    assert words(lines) == [["a"]]
    assert only(sink) == (
        f"'{tmp_path / 'd' / 'sub.conf'}' matched by the include pattern is a directory; skipped",
        1,
        9,
    )


def test_executable_include_file_is_skipped_with_an_error(tmp_path: Path) -> None:
    exe = write(tmp_path / "x.conf", "x\n")
    exe.chmod(0o755)
    lines, sink, _ = lex(tmp_path, "include x.conf\ny\n")
    assert words(lines) == [["y"]]
    assert only(sink) == (
        f"included file '{exe}' is executable: keepalived reads no executable configuration file; skipped",
        1,
        9,
    )
    assert not sink.has_fatal


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_include_is_fatal(tmp_path: Path) -> None:  # pragma: no cover - depends on the user
    secret = write(tmp_path / "secret.conf", "s\n")
    secret.chmod(0)
    _, sink, _ = lex(tmp_path, "include secret.conf\n")
    assert only(sink) == (f"cannot read included file '{secret}': Permission denied", 1, 9)


def test_include_without_a_pattern_is_an_error(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "include\f\n")
    assert lines == []
    assert only(sink) == ("'include' needs a file name", 1, 1)


def test_word_starting_with_include_is_not_an_include(tmp_path: Path) -> None:
    lines, _, _ = lex(tmp_path, "include\nincludes x\n")
    assert words(lines) == [["include"], ["includes", "x"]]


def test_include_depth_is_capped(tmp_path: Path) -> None:
    depth = lexer.MAX_INCLUDE_DEPTH + 5
    for n in range(depth):
        write(tmp_path / f"f{n}.conf", f"level{n}\ninclude f{n + 1}.conf\n")
    lines, sink, _ = lex(tmp_path, "include f0.conf\n")
    assert len(lines) == lexer.MAX_INCLUDE_DEPTH - 1
    message, line, col = only(sink)
    assert (message, line, col) == (f"includes nested more than {lexer.MAX_INCLUDE_DEPTH} deep", 2, 9)


def test_include_file_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer, "MAX_INCLUDE_FILES", 3)
    for n in range(5):
        write(tmp_path / "d" / f"{n}.conf", f"f{n}\n")
    lines, sink, _ = lex(tmp_path, "include d/*.conf\n")
    assert words(lines) == [["f0"], ["f1"]]  # the top file counts too
    assert diags(sink) == [
        (FATAL, "include pattern matches more than 3 files", 1, 9),
        (FATAL, f"more than 3 configuration files; '{tmp_path / 'd' / '2.conf'}' is not read", 1, 9),
    ]


def test_total_input_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer, "MAX_TOTAL_INPUT_BYTES", 100)
    big = write(tmp_path / "big.conf", "x" * 99 + "\n")
    lines, sink, _ = lex(tmp_path, "include big.conf\nafter\n")
    assert lines == []
    assert only(sink) == (f"configuration input exceeds 100 bytes; '{big}' is not read", 1, 9)


# ---------------------------------------------------------------------------------------------------------
# bad input


def test_missing_top_file_is_fatal_without_location(tmp_path: Path) -> None:
    sink = DiagnosticSink()
    path = tmp_path / "nope.conf"
    assert read_config(path, config_id="x", sink=sink) == []
    assert diags(sink) == [
        (FATAL, f"cannot read configuration file '{path}': No such file or directory", None, None)
    ]


def test_top_directory_is_fatal(tmp_path: Path) -> None:
    sink = DiagnosticSink()
    assert read_config(tmp_path, config_id="x", sink=sink) == []
    assert diags(sink) == [(FATAL, f"configuration file '{tmp_path}' is a directory", None, None)]


def test_top_special_file_is_fatal_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sink = DiagnosticSink()
    assert read_config(fifo, config_id="x", sink=sink) == []
    assert diags(sink) == [(FATAL, f"configuration file '{fifo}' is a FIFO", None, None)]


def test_executable_top_file_is_fatal(tmp_path: Path) -> None:
    path = write(tmp_path / "k.conf", "x\n")
    path.chmod(0o700)
    sink = DiagnosticSink()
    assert read_config(path, config_id="x", sink=sink) == []
    assert only(sink, FATAL)[0] == (
        f"configuration file '{path}' is executable: keepalived reads no executable configuration file"
    )


def test_nul_byte_is_fatal_at_its_position_and_ends_the_line(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, b"ab cd\x00ef gh\nnext\n")
    assert words(lines) == [["ab", "cd"], ["next"]]
    assert only(sink) == ("NUL byte in the configuration; the rest of the line is ignored", 1, 6)


def test_invalid_utf8_is_fatal_at_its_position_and_replaced(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, b"ok\nname caf\xe9 x\n")
    assert words(lines) == [["ok"], ["name", "caf\ufffd", "x"]]
    assert only(sink) == ("invalid UTF-8 (byte 0xe9); replaced by U+FFFD", 2, 9)


def test_valid_utf8_columns_count_characters(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "smtp_helo_name héhé x\n")
    assert positions(lines) == [[(1, 1), (1, 16), (1, 21)]]
    assert len(sink) == 0


def test_byte_order_mark_is_an_error_and_stays_in_the_first_word(tmp_path: Path) -> None:
    lines, sink, _ = lex(tmp_path, "\ufeffglobal_defs {\n}\n")
    assert words(lines)[0] == ["\ufeffglobal_defs", "{"]
    assert only(sink) == (
        "UTF-8 byte order mark at the start of the file: keepalived reads it as part of the first word",
        1,
        1,
    )


def test_line_longer_than_keepalived_buffer_is_an_error(tmp_path: Path) -> None:
    # fgets(buf, 1024): 1022 bytes and the newline fit
    lines, sink, _ = lex(tmp_path, "x " + "a" * 1021 + "\nfits " + "b" * 1017 + "\n")
    assert len(lines) == 2
    assert only(sink) == (
        "line is 1023 bytes long: keepalived reads lines of at most 1022 bytes and would split it",
        1,
        1,
    )


def test_megabyte_token_is_lexed_in_linear_time(tmp_path: Path) -> None:
    big = "a" * 4_000_000
    start = time.monotonic()
    lines, sink, _ = lex(tmp_path, f'k {big} "{big}" {big}x{big}\n')
    assert time.monotonic() - start < 5
    assert [len(t.text) for t in lines[0].tokens] == [1, 4_000_000, 4_000_000, 8_000_001]
    assert [d[0] for d in diags(sink)] == [ERROR]  # only the keepalived line length warning


def test_binary_garbage_never_raises(tmp_path: Path) -> None:
    data = bytes(range(256)) * 200 + b'\xff\xfe{\x00}"' * 1000
    start = time.monotonic()
    _lines, sink, _ = lex(tmp_path, data)
    assert time.monotonic() - start < 10
    assert any(d.severity is ERROR for d in sink)
    assert not any("internal error" in d.message for d in sink)


def test_token_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer, "MAX_TOKENS", 5)
    lines, sink, _ = lex(tmp_path, "a b c\nd e f\ng\n")
    assert words(lines) == [["a", "b", "c"]]
    assert only(sink) == ("more than 5 tokens; the rest is ignored", 2, 1)


# ---------------------------------------------------------------------------------------------------------
# rendered templates: text and line_numbers


def test_text_replaces_the_file_and_line_numbers_map_to_the_template(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf.j2"  # need not exist
    sink = DiagnosticSink()
    text = "global_defs {\n\n  router_id $NOPE\n}\n"
    lines = read_config(path, config_id="x", sink=sink, text=text, line_numbers=[3, 4, 7, 9])
    assert words(lines) == [["global_defs", "{"], ["router_id", "$NOPE"], ["}"]]
    assert lines[1].tokens[1].loc == Location(str(path), 7, 13, "  router_id $NOPE")
    assert [line.loc.line for line in lines] == [3, 7, 9]
    assert diags(sink) == [(ERROR, "'$NOPE' is not defined; it is left as it is", 7, 13)]


def test_lines_beyond_line_numbers_keep_their_own_number(tmp_path: Path) -> None:
    sink = DiagnosticSink()
    lines = read_config(tmp_path / "t", config_id="x", sink=sink, text="a\nb\nc\n", line_numbers=[10])
    assert [line.loc.line for line in lines] == [10, 2, 3]


def test_text_includes_are_relative_to_the_path(tmp_path: Path) -> None:
    write(tmp_path / "inc.conf", "included\n")
    sink = DiagnosticSink()
    lines = read_config(tmp_path / "rendered.conf", config_id="x", sink=sink, text="include inc.conf\n")
    assert words(lines) == [["included"]] and len(sink) == 0


def test_text_with_nul_is_an_error(tmp_path: Path) -> None:
    sink = DiagnosticSink()
    lines = read_config(tmp_path / "t", config_id="x", sink=sink, text="a\0b\n", line_numbers=[5])
    assert words(lines) == [["a"]]
    assert diags(sink) == [(ERROR, "NUL byte in the configuration; the rest of the line is ignored", 5, 2)]


# ---------------------------------------------------------------------------------------------------------
# corpus


def test_every_sample_configuration_lexes_without_fatal_diagnostics() -> None:
    assert CORPUS.is_dir(), f"sample corpus missing: {CORPUS}"
    samples = sorted(p for p in CORPUS.iterdir() if p.is_file())
    assert samples, f"sample corpus empty: {CORPUS}"
    for sample in samples:
        for config_id in ("high", "low"):
            sink = DiagnosticSink()
            lines = read_config(sample, config_id=config_id, sink=sink)
            assert lines, sample.name
            assert len(sink) == 0, (sample.name, sink.format())
            opens = sum(t.is_open for line in lines for t in line.tokens)
            closes = sum(t.is_close for line in lines for t in line.tokens)
            assert opens == closes, sample.name
            for line in lines:
                for token in line.tokens:
                    assert token.loc.file == str(sample)
                    assert token.loc.text.strip(), (sample.name, token)


def test_conditional_sample_selects_lines_by_config_id() -> None:
    sample = CORPUS / "keepalived.conf.conditional_conf"
    for config_id, priority in (("high", "170"), ("low", "85"), ("other", None)):
        lines = read_config(sample, config_id=config_id, sink=DiagnosticSink())
        found = [line.tokens[1].text for line in lines if line.tokens[0].text == "priority"]
        assert found == ([priority] if priority else [])


# ---------------------------------------------------------------------------------------------------------
# property tests


def _check_result(lines: list[Line], sink: DiagnosticSink) -> None:
    assert not any("internal error" in d.message for d in sink), sink.format()
    for line in lines:
        assert line.tokens
        for token in line.tokens:
            assert isinstance(token, Token)
            assert token.loc.line >= 1 and token.loc.col >= 1


_SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SLOW
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise_and_return_quickly(tmp_path: Path, data: bytes) -> None:
    start = time.monotonic()
    lines, sink, _ = lex(tmp_path, data)
    assert time.monotonic() - start < 5
    _check_result(lines, sink)


_CONFIG_ALPHABET = st.sampled_from(
    [*' \t\n\r\f"{}#!\\$@^~()=,;:/.*?[]x01A_', "$A", "${A}", "$M", "~SEQ(", "~LST(", "@node1 ", "é", "\0"]
)
_CONFIG_TEXT = st.lists(_CONFIG_ALPHABET, max_size=300).map("".join)
_DEFS = "$A=a $A\n$M=m1 \\\nm2 $M\n\n"


@_SLOW
@given(text=_CONFIG_TEXT)
def test_arbitrary_text_never_raises_and_returns_quickly(tmp_path: Path, text: str) -> None:
    start = time.monotonic()
    sink = DiagnosticSink()
    lines = read_config(tmp_path / "t.conf", config_id="node1", sink=sink, text=_DEFS + text)
    assert time.monotonic() - start < 5
    _check_result(lines, sink)


@_SLOW
@given(text=st.text(max_size=500))
def test_arbitrary_unicode_never_raises(tmp_path: Path, text: str) -> None:
    sink = DiagnosticSink()
    lines = read_config(tmp_path / "t.conf", config_id="node1", sink=sink, text=text)
    _check_result(lines, sink)


_PLAIN_TEXT = st.lists(st.sampled_from(list('ab \t"{}#!\né')), max_size=200).map("".join)


@_SLOW
@given(text=_PLAIN_TEXT)
def test_every_token_column_points_at_its_first_character(tmp_path: Path, text: str) -> None:
    sink = DiagnosticSink()
    lines = read_config(tmp_path / "t.conf", config_id="node1", sink=sink, text=text)
    source = text.split("\n")
    for line in lines:
        cols = [t.loc.col for t in line.tokens]
        assert cols == sorted(set(cols))
        for token in line.tokens:
            assert token.loc.text == source[token.loc.line - 1]
            first = token.loc.text[token.loc.col - 1]
            if token.quoted:
                assert first == '"' or token.text.startswith(first)
            else:
                assert token.text and token.text[0] == first
