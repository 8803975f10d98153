"""A stand-in for ``python -m inferflux.runtime`` in launcher tests: same env contract, no model.

It serves ``/readyz`` (200 after INFERFLUX_STANDIN_DELAY seconds) and ``/v1/models`` with the served
name, and exits at once with a message when the context size is 999, to exercise failed rollouts.
The real runtime is driven by the e2e test of ``inferctl up``.
"""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if os.environ.get("INFERFLUX_CONTEXT_SIZE") == "999":
    print("error: context size 999 is not supported by this stand-in", flush=True)
    sys.exit(3)
READY_AT = time.monotonic() + float(os.environ.get("INFERFLUX_STANDIN_DELAY", "0"))
BODY = {
    "data": [{"id": os.environ["INFERFLUX_SERVED_NAME"], "object": "model"}],
    "env": {k: v for k, v in os.environ.items() if k.startswith("INFERFLUX_")},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ready = time.monotonic() >= READY_AT
        status = 200 if self.path == "/v1/models" or ready else 503
        payload = json.dumps(BODY).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


ThreadingHTTPServer(
    (os.environ["INFERFLUX_HOST"], int(os.environ["INFERFLUX_PORT"])), Handler
).serve_forever()
