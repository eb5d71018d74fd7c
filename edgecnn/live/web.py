"""`--view web`: a read-only page with the MJPEG stream of overlaid frames, `/metrics` JSON and `/healthz`.

Standard library only (ThreadingHTTPServer, one thread per request). Binds 127.0.0.1 unless told otherwise: the
stream has no authentication. Frames are JPEG-encoded only while a stream client is connected, and the number of
stream clients is capped.
"""

from __future__ import annotations

import html
import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from edgecnn.errors import EdgecnnError
from edgecnn.live.overlay import encode_jpeg

LOOPBACK = "127.0.0.1"
BOUNDARY = "edgecnnframe"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{background:#111;color:#ddd;font:14px sans-serif;margin:0;padding:8px}}
img{{max-width:100%;display:block}}</style></head>
<body><img src="/stream.mjpg" alt="live stream"><p>{title} · <a href="/metrics">metrics</a></p></body></html>
"""


class WebView:
    """The HTTP server and the newest JPEG it hands to each stream client."""

    def __init__(self, metrics: Callable[[], dict[str, Any]], host: str = LOOPBACK, port: int = 8080,
                 max_clients: int = 4, title: str = "edgecnn live"):
        if host not in (LOOPBACK, "localhost", "::1"):
            print(f"warning: the web view listens on {host}, reachable from other machines, with no "
                  "authentication; anyone who can reach it sees the camera", file=sys.stderr)
        self.metrics = metrics
        self.max_clients = max_clients
        self.title = title
        self.clients = 0
        self.frames_encoded = 0
        self._condition = threading.Condition()
        self._jpeg: bytes | None = None
        self._frame_id = 0
        self._closing = False
        try:
            self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        except OSError as exc:
            raise EdgecnnError(f"--view web cannot listen on {host}:{port} ({exc.strerror or exc}); another "
                               "`edgecnn live` may hold the port: pick another with --port") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="web-view", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/"

    def start(self) -> str:
        self._thread.start()
        return self.url

    @property
    def wants_frames(self) -> bool:
        """Whether a stream client is connected (otherwise nothing is drawn or encoded)."""
        return self.clients > 0

    def show(self, image_bgr: np.ndarray) -> None:
        """Encode the overlaid frame and hand it to every stream client."""
        jpeg = encode_jpeg(image_bgr)
        with self._condition:
            self._jpeg = jpeg
            self._frame_id += 1
            self.frames_encoded += 1
            self._condition.notify_all()

    def next_frame(self, after: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """The first frame newer than `after` (waiting up to `timeout`); (after, None) when none came."""
        with self._condition:
            self._condition.wait_for(lambda: self._frame_id > after or self._closing, timeout)
            if self._closing or self._frame_id <= after:
                return after, None
            return self._frame_id, self._jpeg

    def latest(self) -> bytes | None:
        return self._jpeg

    def join_client(self) -> bool:
        with self._condition:
            if self.clients >= self.max_clients or self._closing:
                return False
            self.clients += 1
            return True

    def leave_client(self) -> None:
        with self._condition:
            self.clients -= 1

    @property
    def closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _handler_for(view: WebView) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgecnn-live"
        protocol_version = "HTTP/1.0"  # one request per connection: a stream ends by closing it

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass  # keep the status line readable

        def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
            route = ROUTES.get(self.path.split("?", 1)[0])
            if route is None:
                self._send(404, "text/plain", b"not found\n")
                return
            route(self)

        def do_HEAD(self) -> None:  # noqa: N802
            self._send(200 if self.path.split("?", 1)[0] in ROUTES else 404, "text/plain", b"", body=False)

        def _refuse(self) -> None:
            self.send_response(405)
            self.send_header("Allow", "GET, HEAD")
            self.end_headers()

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815 - read-only

        def _send(self, status: int, content_type: str, payload: bytes, body: bool = True) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if body:
                self.wfile.write(payload)

        def page(self) -> None:
            self._send(200, "text/html; charset=utf-8", PAGE.format(title=html.escape(view.title)).encode())

        def metrics(self) -> None:
            self._send(200, "application/json", json.dumps(view.metrics()).encode())

        def healthz(self) -> None:
            state = view.metrics().get("state", "unknown")
            ok = state in ("starting", "running")
            self._send(200 if ok else 503, "application/json", json.dumps({"ok": ok, "state": state}).encode())

        def frame(self) -> None:
            jpeg = view.latest()
            if jpeg is None:
                self._send(503, "text/plain", b"no frame yet: frames are drawn while a stream client is connected\n")
            else:
                self._send(200, "image/jpeg", jpeg)

        def stream(self) -> None:
            if not view.join_client():
                self._send(503, "text/plain", f"at most {view.max_clients} stream clients\n".encode())
                return
            try:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                frame_id = 0
                while not view.closing:
                    frame_id, jpeg = view.next_frame(frame_id)
                    if jpeg is None:
                        continue
                    self.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg + b"\r\n"
                    )
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass  # the client went away
            finally:
                view.leave_client()

    ROUTES: dict[str, Callable[[Handler], None]] = {
        "/": Handler.page, "/index.html": Handler.page, "/stream.mjpg": Handler.stream, "/frame.jpg": Handler.frame,
        "/metrics": Handler.metrics, "/healthz": Handler.healthz,
    }
    return Handler
