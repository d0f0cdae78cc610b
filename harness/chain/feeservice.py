"""The fee-estimate endpoint LND's ``--fee.url`` reads, served by the lab.

btcd's own estimator cannot answer targets above 25 blocks (LND logs an error
each time its sweeper asks), and tests need to change fees on purpose. The
lab serves LND's web-API JSON from a file it can rewrite at any time; the
server re-reads the file on every request. Run as its own process so a
background lab (`lab up`) keeps it after the command returns:

    python -m harness.chain.feeservice --port 8123 --file fees.json
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PATH = "/fee-estimates.json"
# sat/kvB by confirmation target, LND's chainfee.WebAPIResponse shape.
DEFAULT_FEES = {"1": 20000, "2": 15000, "6": 10000, "25": 5000, "144": 2000, "1008": 1012}
MIN_RELAY_SAT_PER_KVB = 1012  # LND's fee floor (253 sat/kw)


def write_fees(path: Path, by_target: dict[str, int] | None = None, *, min_relay: int = MIN_RELAY_SAT_PER_KVB) -> None:
    body = {"fee_by_block_target": by_target or DEFAULT_FEES, "min_relay_feerate": min_relay}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


def make_server(port: int, fee_file: Path) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != PATH:
                self.send_error(404)
                return
            data = fee_file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--file", type=Path, required=True)
    args = ap.parse_args()
    if not args.file.exists():
        write_fees(args.file)
    make_server(args.port, args.file).serve_forever()


if __name__ == "__main__":
    main()
