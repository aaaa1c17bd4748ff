"""Value types for the structured items of keepalived's blocks: VIPs, peers, trackers, scripts, ranges."""

from __future__ import annotations

import ipaddress
import re

from keepalived_py.command_line import split_command_line
from keepalived_py.config.lexer import Token
from keepalived_py.config.model import (
    GarpExtraIf,
    LvsSyncDaemon,
    NotifyScript,
    ScriptUser,
    Tracked,
    UnicastPeer,
    VirtualAddress,
    VirtualServerGroupMember,
)
from keepalived_py.config.routing import parse_route, parse_rule
from keepalived_py.config.values import (
    PORT,
    Args,
    BadValue,
    Custom,
    Int,
    parse_address,
    parse_interface,
)

IFNAMSIZ = 16
#: preferred_lft "forever" (the kernel's INFINITY_LIFE_TIME)
LFT_FOREVER = 0xFFFFFFFF  # Linux interface names are at most 15 characters
SCOPES = ("site", "link", "host", "nowhere", "global")
#: Tracker weights: keepalived accepts -253..253 (254 and 255 are reserved for the owner).
TRACK_WEIGHT = Int(-253, 253)


def interface_name(tok: Token) -> str:
    name = tok.text
    if not name or len(name) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise BadValue(
            f"'{name[:40]}' is not a valid interface name (1..15 characters, no '/' or spaces)", tok
        )
    return name


def _interface(args: Args) -> str:
    return interface_name(args.one("an interface name"))


INTERFACE = Custom(_interface, "interface name")


# --- scripts ------------------------------------------------------------------------------------------------


def _script_words(args: Args) -> list[tuple[str, Token]]:
    """The words after a script keyword as keepalived reads them: it re-reads the line with its script rules
    (quotes of both kinds, backslash escapes; :func:`split_command_line`), so ``"/bin/x a" nobody`` is the
    words ``/bin/x a`` and ``nobody``. Each word with the token it starts in."""
    first = args.first("a script path")
    out: list[tuple[str, Token]] = []
    for tok in args.tokens:
        # Our lexer has taken the double quotes off; put them back (it leaves backslashes inside alone, so
        # keepalived's escapes apply as they would to the line).
        text = f'"{tok.text}"' if tok.quoted else tok.text
        try:
            words = split_command_line(text) if text else []
        except ValueError:
            # a single quote spanning tokens ('/bin/x a'): read the rest of the line as one text
            rest = " ".join(f'"{t.text}"' if t.quoted else t.text for t in args.tokens[len(out) :])
            try:
                words = split_command_line(rest)
            except ValueError as err:
                raise BadValue(f"cannot split script command line: {err}", tok) from None
            out.extend((w, tok) for w in words)
            break
        if tok.quoted and not words:
            words = [""]
        out.extend((w, tok) for w in words)
    if not out or not out[0][0]:
        raise BadValue("empty script command line", first)
    return out


def _command(word: str, tok: Token) -> tuple[str, ...]:
    """The argument vector of keepalived's script string (split a second time by the same rules)."""
    try:
        argv = tuple(split_command_line(word))
    except ValueError as err:
        raise BadValue(f"cannot split script command line: {err}", tok) from None
    if not argv or not argv[0]:
        raise BadValue("empty script command line", tok)
    return argv


def script_argv(args: Args) -> tuple[str, ...]:
    """``vrrp_script``'s ``script`` and ``MISC_CHECK``'s ``misc_path``: keepalived takes the first word as the
    whole command line (quote it to pass arguments: ``script "/bin/check 80"``) and ignores the rest.

    Scripts never run through a shell; this only splits arguments.
    """
    words = _script_words(args)
    word, tok = words[0]
    if len(words) > 1:
        ignored = " ".join(w for w, _ in words[1:])
        args.note(
            f"keepalived runs only '{word}' and ignores '{ignored[:60]}'; to pass arguments, quote the whole "
            f'command line: "{word} {ignored[:60]}"',
            words[1][1],
        )
    return _command(word, tok)


SCRIPT = Custom(script_argv, 'command line (quoted as one word: "/path/script arg ...")')


def notify_script(args: Args) -> NotifyScript:
    """A notify-style script: the command line (the first word, quoted to pass arguments), then optionally
    the user and group it runs as (keepalived ``notify_script_init()``); later words are ignored."""
    words = _script_words(args)
    word, tok = words[0]
    user = ScriptUser(words[1][0], words[2][0] if len(words) > 2 else None) if len(words) > 1 else None
    if len(words) > 3:
        ignored = " ".join(w for w, _ in words[3:])
        args.note(
            f"keepalived ignores '{ignored[:60]}' (the words after a script are USER [GROUP]); to pass "
            "arguments, quote the whole command line",
            words[3][1],
        )
    return NotifyScript(_command(word, tok), user)


NOTIFY_SCRIPT = Custom(notify_script, 'command line (quoted as one word) [USER [GROUP]]')


def _script_user(args: Args) -> ScriptUser:
    user = args.first("a user name")
    if len(args.tokens) > 2:
        raise BadValue("unexpected extra argument (expected USER [GROUP])", args.tokens[2])
    group = args.tokens[1].text if len(args.tokens) == 2 else None
    return ScriptUser(user.text, group)


SCRIPT_USER = Custom(_script_user, "USER [GROUP]")


# --- VRRP items ---------------------------------------------------------------------------------------------


def _vip(args: Args) -> VirtualAddress:
    toks = args.tokens
    address = parse_interface(toks[0])
    opts: dict[str, object] = {}
    i = 1

    def value(what: str) -> Token:
        if i + 1 >= len(toks):
            raise BadValue(f"'{toks[i].text}' needs {what}", toks[i])
        return toks[i + 1]

    while i < len(toks):
        word = toks[i].text
        if word in ("brd", "broadcast"):
            tok = value("a broadcast address")
            if tok.text in ("+", "-"):
                opts["brd"] = tok.text  # computed from the prefix ("+": all ones) or none ("-")
            else:
                opts["brd"] = parse_address(tok, 4)
            i += 2
        elif word == "dev":
            opts["dev"] = interface_name(value("an interface name"))
            i += 2
        elif word == "scope":
            tok = value("a scope")
            if tok.text not in SCOPES and not tok.text.isdigit():
                raise BadValue(f"'{tok.text}' is not a scope ({', '.join(SCOPES)} or a number)", tok)
            opts["scope"] = tok.text
            i += 2
        elif word == "label":
            tok = value("a label")
            if len(tok.text) >= IFNAMSIZ:
                raise BadValue(f"label '{tok.text[:40]}' is longer than 15 characters", tok)
            opts["label"] = tok.text
            i += 2
        elif word == "peer":
            opts["peer"] = parse_interface(value("a peer address"))
            i += 2
        elif word == "track_group":
            opts["track_group"] = value("a group name").text
            i += 2
        elif word == "preferred_lft":
            tok = value("a lifetime")
            opts["preferred_lft"] = LFT_FOREVER if tok.text == "forever" else Int(0, LFT_FOREVER).check(tok)
            i += 2
        elif word in ("home", "-nodad", "noprefixroute", "autojoin", "no_track", "use_vmac"):
            # keepalived adds IPv6 VIPs with IFA_F_NODAD; "-nodad" keeps duplicate address detection
            opts["dad" if word == "-nodad" else word] = True
            i += 1
        else:
            raise BadValue(f"unknown virtual_ipaddress option '{word[:40]}'", toks[i])
    if address.version == 6 and "brd" in opts:
        raise BadValue("'brd' applies only to IPv4 addresses", toks[0])
    return VirtualAddress(address=address, location=args.keyword.loc, **opts)  # type: ignore[arg-type]


VIP = Custom(
    _vip,
    "ADDR[/PREFIX] [dev IF] [brd ADDR] [scope SCOPE] [label LABEL] [peer ADDR] [home] [-nodad] [use_vmac] "
    "...",
)


ROUTE = Custom(
    parse_route,
    "[src ADDR] [from P] [TYPE] PREFIX [via ADDR] [dev IF] [table T] [metric N] [mtu [lock] N ...] "
    "[encap ...] [nexthop via ADDR [dev IF] [weight W] ...] [no_track]",
)
RULE = Custom(
    parse_rule,
    "[from P] [to P] [iif IF] [fwmark N] [tos T] [ipproto P] [sport A-B] ... preference N "
    "table T|l3mdev|goto N|... [no_track]",
)


def _unicast_peer(args: Args) -> UnicastPeer:
    toks = args.tokens
    addr = parse_address(toks[0])
    opts: dict[str, int] = {}
    i = 1
    while i < len(toks):
        word = toks[i].text
        if word in ("min_ttl", "max_ttl") and i + 1 < len(toks):
            opts[word] = Int(0, 255).check(toks[i + 1])
            i += 2
        else:
            raise BadValue(f"unexpected unicast_peer option '{word[:40]}' (min_ttl N, max_ttl N)", toks[i])
    return UnicastPeer(addr, **opts)


UNICAST_PEER = Custom(_unicast_peer, "ADDR [min_ttl N] [max_ttl N]")


def _tracked(name_check: bool) -> Custom:
    def parse(args: Args) -> Tracked:
        toks = args.tokens
        name = interface_name(toks[0]) if name_check else toks[0].text
        weight: int | None = None
        reverse = False
        i = 1
        while i < len(toks):
            word = toks[i].text
            if word == "weight":
                if i + 1 >= len(toks):
                    raise BadValue("'weight' needs a number", toks[i])
                weight = TRACK_WEIGHT.check(toks[i + 1])
                i += 2
            elif word == "reverse" and weight is not None:
                reverse = True
                i += 1
            else:
                raise BadValue(f"unexpected '{word[:40]}' (expected: weight N [reverse])", toks[i])
        return Tracked(name, weight, reverse, args.keyword.loc)

    return Custom(parse, "NAME [weight N [reverse]]")


def _garp_extra_if(args: Args) -> GarpExtraIf:
    """keepalived's ``vrrp_garp_extra_if_handler``: ``all`` and whole seconds 0..86400, in any order."""
    every = False
    interval: int | None = None
    for tok in args.tokens:
        if tok.text == "all":
            every = True
        else:
            interval = Int(0, 86400).check(tok)
    if interval is None:
        raise BadValue(f"'{args.keyword.text}' specified without time - ignoring", args.keyword)
    return GarpExtraIf(float(interval), every)


GARP_EXTRA_IF = Custom(_garp_extra_if, "[all] SECONDS (0: off)")


TRACK_INTERFACE = _tracked(name_check=True)
TRACK_NAME = _tracked(name_check=False)


def _weight_reverse(args: Args) -> tuple[int, bool]:
    tok = args.first("a weight")
    weight = TRACK_WEIGHT.check(tok)
    rest = args.tokens[1:]
    if rest and rest[0].text == "reverse" and len(rest) == 1:
        return weight, True
    if rest:
        raise BadValue(f"unexpected '{rest[0].text[:40]}' (expected: weight N [reverse])", rest[0])
    return weight, False


WEIGHT_REVERSE = Custom(_weight_reverse, "integer -253..253 [reverse]")


def _auth_type(args: Args) -> str:
    tok = args.one("PASS or AH")
    text = tok.text.upper()
    if text not in ("PASS", "AH"):
        raise BadValue(f"'{tok.text[:40]}' is not an authentication type (PASS or AH)", tok)
    return text


AUTH_TYPE = Custom(_auth_type, "PASS|AH")


def _init_file(args: Args) -> tuple[int, bool]:
    value = 0
    overwrite = False
    for tok in args.tokens:
        if tok.text == "overwrite":
            overwrite = True
        else:
            value = Int(-(2**31), 2**31 - 1).check(tok)
    return value, overwrite


INIT_FILE = Custom(_init_file, "[VALUE] [overwrite]")


# --- LVS items ----------------------------------------------------------------------------------------------


def _service_address(args: Args) -> tuple[str, object, int | None]:
    """virtual_server's header: ('ip', addr, port) | ('fwmark', mark, None) | ('group', name, None)."""
    first = args.first("an address and port, 'fwmark N' or 'group NAME'")
    toks = args.tokens
    if first.text == "fwmark":
        if len(toks) < 2:
            raise BadValue("'fwmark' needs a mark number", first)
        _no_more(toks, 2)
        return "fwmark", Int(1, 2**32 - 1).check(toks[1]), None
    if first.text == "group":
        if len(toks) < 2:
            raise BadValue("'group' needs a virtual_server_group name", first)
        _no_more(toks, 2)
        return "group", toks[1].text, None
    addr = parse_address(first)
    if len(toks) < 2:
        raise BadValue("virtual_server needs a port after the address", first)
    _no_more(toks, 2)
    return "ip", addr, PORT.check(toks[1])


def _no_more(toks: tuple[Token, ...], n: int) -> None:
    if len(toks) > n:
        raise BadValue(f"unexpected extra argument '{toks[n].text[:40]}'", toks[n])


SERVICE_ADDRESS = Custom(_service_address, "IP PORT | fwmark N | group NAME")


def _real_server_address(args: Args) -> tuple[object, int | None]:
    toks = args.tokens
    addr = parse_address(args.first("an address"))
    if len(toks) == 1:
        return addr, None
    _no_more(toks, 2)
    return addr, PORT.check(toks[1])


REAL_SERVER_ADDRESS = Custom(_real_server_address, "IP [PORT]")


def _group_member(args: Args) -> VirtualServerGroupMember:
    toks = args.tokens
    if toks[0].text == "fwmark":
        if len(toks) < 2:
            raise BadValue("'fwmark' needs a mark number", toks[0])
        _no_more(toks, 2)
        return VirtualServerGroupMember(fwmark=Int(1, 2**32 - 1).check(toks[1]))
    text = toks[0].text
    base, dash, end = text.partition("-")
    first = parse_address(Token(base, toks[0].loc, toks[0].quoted))
    last = first
    if dash:
        width = 8 if first.version == 4 else 16
        limit = 255 if first.version == 4 else 0xFFFF
        try:
            end_value = int(end, 10 if first.version == 4 else 16)
        except ValueError:
            raise BadValue(f"'{end[:40]}' is not a valid range end", toks[0]) from None
        low = int(first) & limit
        if not low <= end_value <= limit:
            raise BadValue(f"range end {end} is below the range start or out of range", toks[0])
        last = ipaddress.ip_address((int(first) >> width << width) | end_value)
    if len(toks) < 2:
        raise BadValue("a virtual_server_group address needs a port", toks[0])
    _no_more(toks, 2)
    return VirtualServerGroupMember(first=first, last=last, port=PORT.check(toks[1]))


GROUP_MEMBER = Custom(_group_member, "IP[-LAST] PORT | fwmark N")


_STATUS_RANGE = re.compile(r"(\d{3})(?:-(\d{3}))?")
_MD5 = re.compile(r"[0-9a-fA-F]{32}")


def _status_codes(args: Args) -> tuple[tuple[int, int], ...]:
    args.first("a status code or range")
    ranges = []
    for tok in args.tokens:
        for part in tok.text.split(","):
            m = _STATUS_RANGE.fullmatch(part)
            if not m:
                raise BadValue(
                    f"'{part[:40]}' is not an HTTP status code or range (e.g. 200 or 200-299)", tok
                )
            low, high = int(m.group(1)), int(m.group(2) or m.group(1))
            if not 100 <= low <= high <= 599:
                raise BadValue(f"'{part}' is not a valid status code range within 100..599", tok)
            ranges.append((low, high))
    return tuple(ranges)


STATUS_CODES = Custom(_status_codes, "CODE or LOW-HIGH, several allowed")


def _digest(args: Args) -> str:
    tok = args.one("an MD5 digest")
    if not _MD5.fullmatch(tok.text):
        raise BadValue(f"'{tok.text[:40]}' is not an MD5 digest (32 hex digits)", tok)
    return tok.text.lower()


DIGEST = Custom(_digest, "MD5 digest (32 hex digits)")


_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def _url_path(args: Args) -> str:
    tok = args.one("a URL path")
    if not tok.text.startswith("/") and "://" not in tok.text:
        raise BadValue(f"'{tok.text[:40]}' is not a URL path (must start with '/')", tok)
    if _CONTROL_OR_SPACE.search(tok.text):
        raise BadValue("URL path contains control characters or spaces", tok)
    return tok.text


URL_PATH = Custom(_url_path, "path starting with /")


def _http_protocol(args: Args) -> str:
    tok = args.one("1.0, 1.0C or 1.1")
    text = tok.text.upper()
    if text not in ("1.0", "1.0C", "1.1"):
        raise BadValue(f"'{tok.text[:40]}' is not an HTTP protocol version (1.0, 1.0C or 1.1)", tok)
    return text


HTTP_PROTOCOL = Custom(_http_protocol, "1.0|1.0C|1.1")


# --- the other checkers -------------------------------------------------------------------------------------


def parse_hex(args: Args, *, wildcards: bool) -> tuple[bytes, bytes]:
    """keepalived's hex string (``read_hex_str``): the words joined by spaces; two hex digits make a byte, a
    lone digit before a space or the end makes one too ("123" is 12 03). With ``wildcards`` an ``x`` stands
    for any nibble. Returns (bytes, care mask: 0 bits where a wildcard is)."""
    text = " ".join(args.texts())
    data = bytearray()
    mask = bytearray()
    nibbles: list[tuple[int, int]] = []  # (value, care) of the digits of the byte being read

    def flush() -> None:
        if len(nibbles) == 1:
            nibbles.insert(0, (0, 0xF))
        if nibbles:
            (hi, hi_care), (lo, lo_care) = nibbles
            data.append(hi << 4 | lo)
            mask.append(hi_care << 4 | lo_care)
            nibbles.clear()

    for ch in text:
        if ch in " \t":
            flush()
            continue
        if ch in "0123456789abcdefABCDEF":
            nibbles.append((int(ch, 16), 0xF))
        elif wildcards and ch in "xX":
            nibbles.append((0, 0))
        else:
            raise BadValue(f"'{_cut(text)}' is not a hex string (pairs of hex digits"
                           f"{', x for any digit' if wildcards else ''})", args.tokens[0])
        if len(nibbles) == 2:
            flush()
    flush()
    return bytes(data), bytes(mask)


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _payload(args: Args) -> bytes:
    args.first("a hex string")
    data, _ = parse_hex(args, wildcards=False)
    if not data:
        raise BadValue("empty hex string", args.tokens[0])
    return data


HEX_PAYLOAD = Custom(_payload, "hex string (e.g. 0a22fe)")


def _require_reply(args: Args) -> tuple[bytes, bytes]:
    if not args.tokens:
        return b"", b""
    return parse_hex(args, wildcards=True)


REQUIRE_REPLY = Custom(_require_reply, "[hex string, x for any digit]")

DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY")


def _dns_name(args: Args) -> str:
    tok = args.one("a domain name")
    text = tok.text
    if text != "." and (text.startswith(".") or ".." in text):
        raise BadValue(f"DNS_CHECK name '{_cut(text)}' has an empty label", tok)
    labels = [label for label in text.rstrip(".").split(".") if label]
    if any(len(label.encode()) > 63 for label in labels) or len(text.encode()) > 253:
        raise BadValue(f"DNS_CHECK name '{_cut(text)}' is too long (labels of at most 63, 253 in all)", tok)
    return text


DNS_NAME = Custom(_dns_name, "domain name (default: the root)")


def _file_check_weight(args: Args) -> tuple[int, bool]:
    tok = args.first("a weight")
    weight = Int(-(2**31 - 1), 2**31 - 1).check(tok)
    rest = args.tokens[1:]
    if len(rest) > 1:
        raise BadValue("unexpected extra argument (expected: weight N [reverse|noreverse])", rest[1])
    if rest and rest[0].text not in ("reverse", "noreverse"):
        raise BadValue(f"unexpected '{_cut(rest[0].text)}' (expected: reverse or noreverse)", rest[0])
    return weight, bool(rest) and rest[0].text == "reverse"


FILE_CHECK_WEIGHT = Custom(_file_check_weight, "integer -2147483647..2147483647 [reverse|noreverse]")


def _granularity(args: Args) -> ipaddress.IPv4Address | ipaddress.IPv6Address | int:
    """keepalived's ``pgr_handler``: with a dot an IPv4 netmask, else an IPv6 prefix length 1..128."""
    tok = args.one("a netmask or an IPv6 prefix length")
    if "." in tok.text:
        addr = parse_address(tok)
        if addr.version != 4:
            raise BadValue(f"'{_cut(tok.text)}' is not an IPv4 netmask", tok)
        return addr
    return Int(1, 128).check(tok)


GRANULARITY = Custom(_granularity, "IPv4 netmask | IPv6 prefix length 1..128")


#: keepalived's LVS_MAX_TIMEOUT (31 days)
LVS_MAX_TIMEOUT = 86400 * 31


def _lvs_timeouts(args: Args) -> tuple[int, int, int]:
    """keepalived's ``lvs_timeouts``: ``[tcp N] [tcpfin N] [udp N]`` (0 or unset: left as it is); a bad
    option or value is an error and ignored, the rest taken."""
    if len(args.tokens) < 2:
        raise BadValue("lvs_timeouts requires at least one option", args.keyword)
    values = {"tcp": 0, "tcpfin": 0, "udp": 0}
    tokens = list(args.tokens)
    while tokens:
        tok = tokens.pop(0)
        if tok.text not in values:
            args.error(f"unknown option '{_cut(tok.text)}' for lvs_timeouts (tcp, tcpfin, udp)", tok)
            continue
        if not tokens:
            args.error(f"no value for lvs_timeouts {tok.text} - ignoring", tok)
            continue
        value = tokens.pop(0)
        try:
            values[tok.text] = Int(0, LVS_MAX_TIMEOUT).check(value)
        except BadValue as err:
            args.error(f"invalid lvs_timeouts {tok.text}: {err.message} - ignoring", value)
    return values["tcp"], values["tcpfin"], values["udp"]


LVS_TIMEOUTS = Custom(_lvs_timeouts, "[tcp SECONDS] [tcpfin SECONDS] [udp SECONDS]")


# --- HTTP_GET url regex -------------------------------------------------------------------------------------

#: keepalived's regex_options (PCRE2 compile options) that Python's re has: the flag to use
REGEX_FLAGS = {
    "caseless": re.IGNORECASE, "dotall": re.DOTALL, "extended": re.VERBOSE, "multiline": re.MULTILINE
}
#: ... that do not change what matches (optimisations, syntax kpd's re reads anyway): accepted, no effect;
#: firstline is applied by the matcher (the match must start in the first line)
REGEX_SAME = ("auto_callout", "dupnames", "firstline", "no_auto_capture", "no_auto_possess",
              "no_dotstar_anchor", "no_start_optimize", "never_backslash_c", "use_offset_limit", "never_utf",
              "never_ucp")
#: ... that Python's re cannot apply: reported, ignored
REGEX_UNSUPPORTED = ("allow_empty_class", "alt_bsux", "dollar_endonly", "match_unset_backref", "ucp",
                     "ungreedy", "utf", "alt_circumflex", "alt_verbnames")


def _regex_options(args: Args) -> tuple[str, ...]:
    args.first("regex options")
    kept: list[str] = []
    for tok in args.tokens:
        if tok.text in REGEX_FLAGS or tok.text in REGEX_SAME:
            kept.append(tok.text)
        elif tok.text in REGEX_UNSUPPORTED:
            args.error(f"regex option '{tok.text}' has no equivalent in Python's re (kpd's regex engine); "
                       "it is ignored", tok)
        else:
            args.error(f"unknown regex option '{_cut(tok.text)}'; it is ignored", tok)
    return tuple(kept)


REGEX_OPTIONS = Custom(_regex_options, "PCRE2 option names (caseless, dotall, extended, multiline, ...)")


def regex_flags(options: tuple[str, ...]) -> int:
    flags = 0
    for option in options:
        flags |= REGEX_FLAGS.get(option, 0)
    return flags


def _regex(args: Args) -> str:
    tok = args.one("a regular expression (quoted)")
    try:
        re.compile(tok.text.encode("utf-8", "surrogateescape"))
    except re.error as err:
        raise BadValue(f"regex does not compile (Python's re): {err}", tok) from None
    return tok.text


REGEX = Custom(_regex, "regular expression (Python's re syntax, a PCRE subset)")


def _regex_stack(args: Args) -> tuple[int, int]:
    if len(args.tokens) != 2:
        raise BadValue("regex_stack requires start and max values", args.keyword)
    start, most = (Int(1, 2**31 - 1).check(t) for t in args.tokens)
    if start > most:
        raise BadValue("regex stack start cannot exceed max value", args.tokens[0])
    return start, most


REGEX_STACK = Custom(_regex_stack, "START MAX (bytes)")


def _lvs_sync_daemon(args: Args) -> LvsSyncDaemon:
    """keepalived's ``lvs_syncd_handler``: INTERFACE VRRP_INSTANCE, then options; a bad option is an error
    and ignored (the old positional SYNC_ID after the instance is taken, with an error)."""
    if len(args.tokens) < 2:
        raise BadValue("lvs_sync_daemon requires an interface and a vrrp instance", args.keyword)
    interface = interface_name(args.tokens[0])
    instance = args.tokens[1].text
    values: dict[str, object] = {}
    limits = {"id": (0, 255), "maxlen": (1, 65535 - 20 - 8), "port": (1, 65535), "ttl": (1, 255)}
    tokens = list(args.tokens[2:])
    first = True
    while tokens:
        tok = tokens.pop(0)
        if tok.text in limits or tok.text == "group":
            if not tokens:
                args.error(f"no value specified for lvs_sync_daemon {tok.text} - ignoring", tok)
                break
            value = tokens.pop(0)
            try:
                if tok.text == "group":
                    group = parse_address(value)
                    if not group.is_multicast:
                        raise BadValue(f"lvs_sync_daemon group address {value.text} is not multicast", value)
                    values["group"] = group
                else:
                    values["syncid" if tok.text == "id" else tok.text] = Int(*limits[tok.text]).check(value)
            except BadValue as err:
                args.error(f"invalid lvs_sync_daemon {tok.text}: {err.message} - ignoring", value)
        elif first and tok.text.isdigit():
            args.error('please use keyword "id" before lvs_sync_daemon SYNCID', tok)
            values["syncid"] = Int(0, 255).check(tok)
        else:
            args.error(f"unknown lvs_sync_daemon option '{_cut(tok.text)}'", tok)
        first = False
    return LvsSyncDaemon(interface, instance, **values)  # type: ignore[arg-type]


LVS_SYNC_DAEMON = Custom(
    _lvs_sync_daemon, "INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]"
)
