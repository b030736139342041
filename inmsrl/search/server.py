"""The listening page: search an index in a browser and hear each hit at its matching time.

``inmsrl serve --index I`` starts a small HTTP server (the standard library's, one thread per request)
on 127.0.0.1 by default. What it answers:

- ``GET /``: the page (:mod:`inmsrl.search.page`);
- ``GET /api/index``: the instruments and the indexed tracks (ids and durations);
- ``GET /api/search?track=ID&weights=piano=0.7,drums=0.3&k=10``: hits of an indexed track;
- ``POST /api/upload?weights=...&k=10``: hits of an uploaded file (the body, at most ``max_upload``
  bytes; larger is refused with 413 before it is read), embedded with the index's model;
- ``GET /audio/N``: the audio file of the N-th indexed track, and ``GET /audio/upload/TOKEN`` a recent
  upload. Nothing from a request is ever used as a path: a track is found by its number in the index,
  so only indexed audio can be served; anything else is 404.

Audio answers honour byte ranges, which browsers use to seek (the page starts each hit at its match
time with a media fragment, ``#t=SECONDS``).
"""

from __future__ import annotations

import json
import mimetypes
import re
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from inmsrl.search.embedding_file import TrackEmbedding
from inmsrl.search.index import Index, SearchIndexError
from inmsrl.search.page import PAGE

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
KEPT_UPLOADS = 8        # recent uploads kept (in memory) so the page can play them
MAX_K = 100
RANGE_CHUNK = 4 * 1024 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class SearchService:
    """What the page asks of an index: its tracks, searches, and the audio to play."""

    def __init__(self, index: Index, embed_upload: Callable[[Path, str], TrackEmbedding] | None = None,
                 max_upload: int = MAX_UPLOAD_BYTES):
        self.index = index
        self.embed_upload = embed_upload
        self.max_upload = max_upload
        self.uploads: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self.lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {"sources": list(self.index.sources), "model": self.index.model.get("model", ""),
                "uploads": self.embed_upload is not None, "max_upload": self.max_upload,
                "tracks": [{"number": i, "id": t.track_id, "duration": round(t.duration, 3)}
                           for i, t in enumerate(self.index.tracks)]}

    def hits(self, query: TrackEmbedding | str, weights: str, k: int) -> list[dict[str, Any]]:
        numbers = {t.track_id: i for i, t in enumerate(self.index.tracks)}
        return [{**hit.to_dict(), "number": numbers[hit.track_id], "path": None}
                for hit in self.index.search(query, weights or None, min(max(k, 1), MAX_K))]

    def search_upload(self, data: bytes, name: str, weights: str, k: int) -> dict[str, Any]:
        if self.embed_upload is None:
            raise SearchIndexError("this server has no model to embed uploads (start it with --model)")
        suffix = Path(name).suffix.lower() if re.fullmatch(r"[\w\- .]{1,200}", name) else ""
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp.write(data)
            tmp.flush()
            query = self.embed_upload(Path(tmp.name), name)
        token = uuid.uuid4().hex
        with self.lock:
            self.uploads[token] = (data, mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream")
            while len(self.uploads) > KEPT_UPLOADS:
                self.uploads.popitem(last=False)
        return {"upload": token, "hits": self.hits(query, weights, k)}

    def audio(self, number: str) -> tuple[Path, str] | None:
        """The file of the indexed track ``number`` (a decimal index into the track list), or None."""
        if not re.fullmatch(r"\d{1,9}", number) or int(number) >= len(self.index.tracks):
            return None
        path = Path(self.index.tracks[int(number)].path)
        if not path.is_file():
            return None
        return path, mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def make_handler(service: SearchService) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``service``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "inmsrl"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass  # quiet: the page polls nothing, and errors are answered to the page

        def _send(self, status: int, body: bytes, content_type: str,
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, payload: Any, status: int = 200) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _error(self, status: int, message: str) -> None:
            self._json({"error": message}, status)

        def _ranged(self, size: int, read: Callable[[int, int], bytes], content_type: str) -> None:
            """The whole content, or the one byte range the request asks for (how browsers seek)."""
            match = _RANGE.match(self.headers.get("Range", "").strip())
            if not match or not any(match.groups()):
                self._send(200, read(0, size), content_type, {"Accept-Ranges": "bytes"})
                return
            first, last = match.groups()
            start = int(first) if first else max(0, size - int(last))
            # An open range gets at most RANGE_CHUNK bytes: the browser asks on for the rest.
            end = min(int(last), size - 1) if first and last else min(size - 1, start + RANGE_CHUNK - 1)
            if start >= size or start > end:
                self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", content_type,
                           {"Content-Range": f"bytes */{size}"})
                return
            self._send(HTTPStatus.PARTIAL_CONTENT, read(start, end + 1 - start), content_type,
                       {"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{size}"})

        def _file(self, path: Path, content_type: str) -> None:
            with open(path, "rb") as stream:
                def read(start: int, length: int) -> bytes:
                    stream.seek(start)
                    return stream.read(length)

                self._ranged(path.stat().st_size, read, content_type)

        def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                if url.path == "/":
                    self._send(200, PAGE.encode(), "text/html; charset=utf-8")
                elif url.path == "/api/index":
                    self._json(service.describe())
                elif url.path == "/api/search":
                    self._json({"hits": service.hits(query.get("track", ""), query.get("weights", ""),
                                                     int(query.get("k", 10)))})
                elif url.path.startswith("/audio/upload/"):
                    with service.lock:
                        found = service.uploads.get(url.path.removeprefix("/audio/upload/"))
                    if found is None:
                        self._error(404, "not found")
                    else:
                        data, content_type = found
                        self._ranged(len(data), lambda start, length: data[start:start + length],
                                     content_type)
                elif url.path.startswith("/audio/"):
                    found = service.audio(url.path.removeprefix("/audio/"))
                    if found is None:
                        self._error(404, "not found")
                    else:
                        self._file(*found)
                else:
                    self._error(404, "not found")
            except (SearchIndexError, ValueError) as err:
                self._error(400, str(err))

        def do_POST(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path != "/api/upload":
                self._error(404, "not found")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._error(411, "an upload needs a Content-Length")
                return
            if length > service.max_upload:
                self.close_connection = True  # the body is not read
                self._error(413, f"the file is {length} bytes; this server takes at most "
                                 f"{service.max_upload}")
                return
            if length <= 0:
                self._error(400, "the upload is empty")
                return
            data = self.rfile.read(length)
            try:
                self._json(service.search_upload(data, query.get("name", "upload"), query.get("weights", ""),
                                                 int(query.get("k", 10))))
            except (SearchIndexError, ValueError, RuntimeError) as err:
                self._error(400, f"cannot search with {query.get('name', 'the upload')}: {err}")

    return Handler


def make_server(service: SearchService, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server for ``service`` bound to ``host:port`` (port 0: any free port); call serve_forever()."""
    server = ThreadingHTTPServer((host, port), make_handler(service))
    server.daemon_threads = True
    return server
