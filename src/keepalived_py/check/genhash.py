"""``kpd genhash``: the MD5 digest of a url's body, for HTTP_GET/SSL_GET ``digest``, as keepalived's genhash.

    kpd genhash -s 10.0.0.2 [-p 8080] -u /health [-S] [-I] [-V VHOST] [-P 1.0|1.0c|1.1] [-t 5] [-v]

prints the digest (with ``-v``: the status line, the headers, ``MD5SUM = <hex>``) and exits 0,
or prints why it failed and exits 1. The request and the digest are exactly those of the HTTP_GET /
SSL_GET checker.
"""

from __future__ import annotations

import argparse
import sys

from keepalived_py.exitcodes import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--server", required=True, metavar="IP", help="the real server's address")
    p.add_argument("-p", "--port", type=int, help="its port (default 80, or 443 with -S)")
    p.add_argument("-u", "--url", required=True, metavar="PATH", help="the url path, e.g. /health")
    p.add_argument("-S", "--use-ssl", action="store_true", help="SSL_GET: over TLS (not verified)")
    p.add_argument("-I", "--use-sni", action="store_true", help="send the virtualhost (-V) as TLS SNI")
    p.add_argument("-V", "--use-virtualhost", metavar="HOST", help="the Host header (default: the address)")
    p.add_argument("-P", "--protocol", choices=("1.0", "1.0c", "1.1"), default="1.0",
                   help="HTTP version; 1.0c: 1.0 with Connection: close (default 1.0)")
    p.add_argument("-t", "--timeout", type=float, default=5.0, help="seconds for the whole request (5)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the status line and headers")


def main(args: argparse.Namespace) -> int:
    import asyncio  # here, not at the top: the kpd command line builds its parser from add_arguments

    from keepalived_py.check.http_probe import HttpTarget, fetch

    port = args.port if args.port is not None else (443 if args.use_ssl else 80)
    target = HttpTarget(host=args.server, port=port, path=args.url, virtualhost=args.use_virtualhost,
                        ssl=args.use_ssl, sni=args.use_virtualhost if args.use_sni else None,
                        http_protocol=args.protocol, timeout=args.timeout)
    outcome = asyncio.run(fetch(target, want_digest=True))
    if outcome.error is not None:
        print(f"kpd genhash: {args.server}:{port}{args.url}: {outcome.error}", file=sys.stderr)
        return int(ExitCode.FAILURE)
    if args.verbose:
        print(outcome.status_line)
        for name, value in outcome.headers:
            print(f"{name}: {value}")
        print()
        print(f"MD5SUM = {outcome.digest}")
    else:
        print(outcome.digest)  # keepalived 2.2's genhash prints the bare digest
    return int(ExitCode.OK)
