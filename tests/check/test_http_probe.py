"""HTTP_GET / SSL_GET probes and `kpd genhash` against real local servers, well- and badly-behaved."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import subprocess
import sys
import threading
import time
from argparse import Namespace

import pytest

from keepalived_py.check import genhash
from keepalived_py.check.body_regex import BodyRegex
from keepalived_py.check.http_probe import HttpTarget, TlsClient, probe_http
from keepalived_py.check.probe_socket import Source

BODY = b"<html>healthy</html>\n"
OK = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY


class Server:
    """An asyncio server on 127.0.0.1 whose behaviour is a coroutine; it records requests and peers."""

    def __init__(self, behaviour, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour = behaviour
        self.tls = tls
        self.requests: list[bytes] = []
        self.peers: list[str] = []

    async def __aenter__(self) -> Server:
        async def handle(reader, writer):
            self.peers.append(writer.get_extra_info("peername")[0])
            try:
                self.requests.append(await reader.readuntil(b"\r\n\r\n"))
                await self.behaviour(writer)
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                writer.transport.abort()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()


def target(port: int, **kw) -> HttpTarget:
    return HttpTarget(**{"host": "127.0.0.1", "port": port, "path": "/health", "timeout": 1.0, **kw})


def reply(data: bytes):
    async def send(writer):
        writer.write(data)
        await writer.drain()
    return send


def check(behaviour, tls=None, tls_client=None, **kw):
    async def main():
        async with Server(behaviour, tls) as srv:
            start = time.monotonic()
            result = await probe_http(target(srv.port, tls=tls_client, **kw))
            return result, srv, time.monotonic() - start
    return asyncio.run(main())


def test_200_is_up_and_the_request_is_keepalived_s():
    r, srv, _ = check(reply(OK), virtualhost="www.example.com")
    assert r.ok, r
    req = srv.requests[0]
    assert req == b"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: www.example.com\r\n\r\n"


def test_http_protocol_1_1_and_default_host_header():
    r, srv, _ = check(reply(OK), http_protocol="1.1")
    assert r.ok
    assert srv.requests[0] == (b"GET /health HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
                               b"Host: 127.0.0.1:%d\r\n\r\n" % srv.port)


def test_500_is_down_with_the_status_in_the_reason():
    r, _, _ = check(reply(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"))
    assert not r.ok and r.reason == "HTTP status 500 not in 200-299"


def test_status_code_ranges():
    r, _, _ = check(reply(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"), status_codes=((300, 399),))
    assert r.ok


def test_digest_match_and_mismatch():
    good = hashlib.md5(BODY).hexdigest()
    assert check(reply(OK), digest=good.upper())[0].ok
    r, _, _ = check(reply(OK), digest="0" * 32)
    assert not r.ok and r.reason == f"digest mismatch: got {good}, expected {'0' * 32}"


def test_malformed_status_line_is_down():
    r, _, _ = check(reply(b"HTTP/1.1 20x\r\n\r\n"))
    assert not r.ok and r.reason.startswith("malformed status line")


def test_refused_is_down():
    async def main():
        async with Server(reply(OK)) as srv:
            port = srv.port
        return await probe_http(target(port))
    r = asyncio.run(main())
    assert not r.ok and r.reason == "connect: Connection refused"


@pytest.mark.parametrize("name", ["silent", "endless_headers", "slow_drip"])
def test_servers_that_never_finish_fail_within_the_timeout(name):
    async def silent(writer):
        await asyncio.sleep(30)

    async def endless_headers(writer):
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(100000):
            writer.write(b"X-More: yes\r\n")
            await writer.drain()
            await asyncio.sleep(0.001)

    async def slow_drip(writer):
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        for _ in range(10000):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    r, _, took = check({"silent": silent, "endless_headers": endless_headers, "slow_drip": slow_drip}[name])
    assert not r.ok and ("timeout" in r.reason or "headers too large" in r.reason or "too many" in r.reason)
    assert took < 1.0 + 1.5


def test_reset_mid_response_is_down():
    async def reset(writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        writer.transport.abort()
    r, _, _ = check(reset)
    assert not r.ok and ("reset" in r.reason or "closed before" in r.reason), r.reason


@pytest.fixture(scope="module")
def tls_server_context(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kpd-test",
                    "-days", "1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


def test_ssl_get_with_sni(tls_server_context):
    names = []
    tls_server_context.sni_callback = lambda sock, name, ctx: names.append(name)
    r, _, _ = check(reply(OK), tls=tls_server_context, ssl=True, sni="www.example.com")
    assert r.ok, r
    assert names == ["www.example.com"]


class ShutdownRecorder:
    """A blocking TLS server on 127.0.0.1 that answers one request, sends its close_notify and records, per
    connection, the SNI name and whether the client answered with a close_notify before closing."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.seen: list[tuple[str | None, bool]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.context.sni_callback = lambda sock, name, ctx: setattr(sock, "sni_name", name)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            raw, _ = self.listener.accept()
            raw.settimeout(3)
            try:
                conn = self.context.wrap_socket(raw, server_side=True)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(1000)
                conn.sendall(OK)
                name = getattr(conn, "sni_name", None)  # set by the SNI callback
                try:
                    conn.unwrap()  # our close_notify, then the client's (or its bare EOF)
                    answered = True
                except (ssl.SSLError, OSError):
                    answered = False
                self.seen.append((name, answered))
            except (ssl.SSLError, OSError):
                self.seen.append((None, False))
            finally:
                raw.close()

    def recorded(self, count: int = 1) -> list[tuple[str | None, bool]]:
        deadline = time.monotonic() + 10
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.seen


@pytest.mark.parametrize("compliant", [False, True])
def test_ssl_get_sends_close_notify_only_when_tls_compliant(tls_server_context, compliant):
    """keepalived sets SSL_set_quiet_shutdown unless tls_compliant (2.2.8): no close_notify from the
    checker even when the server sends its own first; with tls_compliant it answers with one."""
    recorder = ShutdownRecorder(tls_server_context)
    r = asyncio.run(probe_http(target(recorder.port, ssl=True, tls_compliant=compliant)))
    assert r.ok, r
    assert recorder.recorded() == [(None, compliant)]


def test_ssl_get_without_sni_sends_no_server_name(tls_server_context):
    recorder = ShutdownRecorder(tls_server_context)
    assert asyncio.run(probe_http(target(recorder.port, ssl=True, virtualhost="www.example.com"))).ok
    assert recorder.recorded() == [(None, False)]


def test_ssl_get_against_a_plain_server_is_down():
    r, _, took = check(reply(OK), ssl=True)
    # the plain server waits for a request that never comes: the handshake fails or times out, in time
    assert not r.ok and (r.reason.startswith(("TLS:", "connection reset")) or "(TLS)" in r.reason), r.reason
    assert took < 2.5


def test_bindto_is_the_source_address():
    r, srv, _ = check(reply(OK), source=Source(bindto="127.0.0.2"))
    assert r.ok and srv.peers == ["127.0.0.2"]


def test_genhash_prints_the_digest(capsys):
    async def main():
        async with Server(reply(OK)) as srv:
            args = Namespace(server="127.0.0.1", port=srv.port, url="/x", use_ssl=False, use_sni=False,
                             use_virtualhost=None, protocol="1.0", timeout=2.0, verbose=False)
            return await asyncio.get_running_loop().run_in_executor(None, genhash.main, args)
    assert asyncio.run(main()) == 0
    assert capsys.readouterr().out == f"{hashlib.md5(BODY).hexdigest()}\n"


@pytest.mark.interop
@pytest.mark.parametrize("chunked", [False, True])
def test_kpd_genhash_agrees_with_keepalived_s_genhash(chunked, tmp_path):
    """The same url through keepalived's genhash and `kpd genhash`: the same MD5SUM line."""
    body = b"".join(b"line %d of the health page\n" % i for i in range(500))
    if chunked:
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(body[i:i + 700]), body[i:i + 700]) for i in range(0, len(body), 700)
        ) + b"0\r\n\r\n"
    else:
        raw = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    async def main():
        async with Server(reply(raw)) as srv:
            argv = ["-s", "127.0.0.1", "-p", str(srv.port), "-u", "/health"]
            loop = asyncio.get_running_loop()
            theirs = await loop.run_in_executor(None, lambda: subprocess.run(
                ["genhash", *argv], capture_output=True, text=True, timeout=20))
            ours = await loop.run_in_executor(None, lambda: subprocess.run(
                [sys.executable, "-m", "keepalived_py", "genhash", *argv], capture_output=True, text=True,
                timeout=20))
            return theirs, ours

    theirs, ours = asyncio.run(main())
    digest = hashlib.md5(raw.split(b"\r\n\r\n", 1)[1]).hexdigest()  # every byte after the headers
    assert theirs.stdout.split() == [digest], theirs.stdout + theirs.stderr
    assert ours.stdout.split() == [digest], ours.stdout + ours.stderr


@pytest.mark.parametrize(("regex", "ok"), [
    (BodyRegex("healthy"), True),
    (BodyRegex("sick"), False),
    (BodyRegex("healthy", no_match=True), False),
    (BodyRegex("sick", no_match=True), True),
    (BodyRegex("HEALTHY"), False),
    (BodyRegex("HEALTHY", options=("caseless",)), True),
    (BodyRegex("healthy", min_offset=7), False),  # "<html>" is 6 bytes: the match starts at 6
    (BodyRegex("healthy", min_offset=6), True),
    (BodyRegex("healthy", max_offset=5), False),
    (BodyRegex("healthy", max_offset=6), True),
    (BodyRegex(r"^<html>h", options=("multiline",)), True),
])
def test_url_regex_judges_the_body_as_keepalived(regex, ok):
    r, _, _ = check(reply(OK), regex=regex)
    assert r.ok is ok, r.reason
    if not ok:
        assert r.reason == "Regex match failed"


def test_regex_is_checked_after_the_status():
    r, _, _ = check(reply(b"HTTP/1.0 500 NO\r\nContent-Length: 7\r\n\r\nhealthy"), regex=BodyRegex("healthy"))
    assert not r.ok and "status 500" in r.reason


def test_regex_sees_at_most_body_max_bytes(monkeypatch):
    from keepalived_py.check import body_regex, http_probe

    monkeypatch.setattr(http_probe, "BODY_MAX", 16)
    body = b"x" * 20 + b"needle"
    r, _, _ = check(reply(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body),
                    regex=BodyRegex("needle"))
    assert not r.ok
    assert body_regex.BodyRegex("needle").passes(body)


@pytest.fixture(scope="module")
def client_certs(tmp_path_factory):
    """A CA, a client certificate it signed (key protected by a password), and a server that requires it."""
    d = tmp_path_factory.mktemp("mtls")

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kpd-ca", "-days", "1",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-subj", "/CN=checker", "-passout", "pass:s3cret",
            "-keyout", "client.key", "-out", "client.csr")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-out", "client.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=server", "-days", "1",
            "-keyout", "server.key", "-out", "server.pem")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(d / "server.pem", d / "server.key")
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(d / "ca.pem")
    return d, server


def test_ssl_block_client_certificate_is_presented(client_certs):
    d, server = client_certs
    r, _, _ = check(reply(OK), tls=server, ssl=True)
    assert not r.ok  # the server requires a client certificate
    client = TlsClient(str(d / "client.pem"), str(d / "client.key"), "s3cret", str(d / "ca.pem"))
    r, _, _ = check(reply(OK), tls=server, ssl=True, tls_client=client)
    assert r.ok, r.reason


def test_ssl_block_with_unreadable_files_fails_the_check_with_the_reason(client_certs):
    d, server = client_certs
    client = TlsClient(str(d / "missing.pem"), None, None, None)
    r, _, _ = check(reply(OK), tls=server, ssl=True, tls_client=client)
    assert not r.ok and r.reason.startswith("SSL error"), r.reason
