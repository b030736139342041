"""The listening page in a real browser (Debian's chromium driven by Playwright), and what the server
refuses: paths outside the index, oversized uploads, other hosts than localhost by default."""

from __future__ import annotations

import http.client
import threading

import numpy as np
import pytest
import soundfile as sf
from search_fixtures import SOURCES, SR, instrument

from inmsrl.bin import serve
from inmsrl.search.embedder import index_embedder
from inmsrl.search.index import Index
from inmsrl.search.server import SearchService, make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def server(search_corpus, tmp_path_factory):
    """A server of an index of four songs (6 s each, 2 s windows), embedding uploads with its model."""
    from inmsrl.search.embedder import Embedder

    _, exp = search_corpus
    root = tmp_path_factory.mktemp("page")
    embedder = Embedder.from_pretrained(exp, device="cpu", window=2.0, hop=1.0)
    tracks = []
    for song in (1, 2, 4, 6):
        path = root / "music" / f"song{song}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, sum(instrument(song, name, 6.0) for name in SOURCES), SR)
        tracks.append(embedder.embed_file(path))
    Index.build(tracks).save(root / "idx")
    (root / "secret.txt").write_text("not indexed")
    index = Index.open(root / "idx")
    service = SearchService(index, index_embedder(index, device="cpu").embed_file, max_upload=200_000)
    httpd = make_server(service, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"port": httpd.server_address[1], "root": root}
    httpd.shutdown()
    httpd.server_close()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def test_the_page_searches_and_plays_each_hit_at_its_matching_time(server, tmp_path):
    from playwright.sync_api import sync_playwright

    upload = tmp_path / "mine.wav"
    sf.write(upload, sum(instrument(2, name, 4.0) for name in SOURCES), SR)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server['port']}/")
            page.wait_for_selector("#status:text('ready')", timeout=15000)
            page.select_option("#track", label="song4.wav (0:06.0)")
            page.fill("#w-drums", "0")
            page.fill("#w-guitar", "0")
            page.fill("#k", "3")
            page.click("#search-track")
            page.wait_for_selector("tr.hit", timeout=15000)
            rows = page.locator("tr.hit")
            assert rows.count() == 3
            assert rows.first.get_attribute("data-track") == "song4.wav"
            assert "bass" in rows.first.inner_text() and "drums" not in rows.first.inner_text()
            # Each hit plays from its best-matching window: the media fragment, and the browser seeks there.
            second = page.locator("tr.hit").nth(1).locator(".match-audio audio")
            start = float(second.get_attribute("data-start"))
            assert second.get_attribute("src").endswith(f"#t={start:.3f}")
            page.wait_for_function("(a) => a.readyState >= 1", arg=second.element_handle(), timeout=15000)
            assert second.evaluate("(a) => a.currentTime") == pytest.approx(start, abs=0.05)
            assert second.evaluate("(a) => a.duration") == pytest.approx(6.0, abs=0.05)
            # An uploaded file: its own audio is the query player, the song it was cut from comes first.
            page.set_input_files("#file", str(upload))
            page.click("#search-file")
            page.wait_for_selector("tr.hit >> nth=0 >> .query-audio audio[src^='/audio/upload/']",
                                   timeout=30000)
            assert page.locator("tr.hit").first.get_attribute("data-track") == "song2.wav"
        finally:
            browser.close()


@pytest.mark.parametrize("path", ["/audio/../secret.txt", "/audio/..%2Fsecret.txt", "/audio/4", "/audio/-1",
                                  "/audio/0/../../secret.txt", "/secret.txt", "/idx/manifest.json",
                                  "/audio/upload/0123", "/audio/%2e%2e/%2e%2e/etc/passwd"])
def test_nothing_outside_the_index_is_served(server, path):
    status, body, _ = request(server["port"], "GET", path)
    assert status == 404 and b"not indexed" not in body


def test_indexed_audio_is_served_with_byte_ranges(server):
    status, whole, _ = request(server["port"], "GET", "/audio/0")
    assert status == 200 and whole == (server["root"] / "music" / "song1.wav").read_bytes()
    status, part, headers = request(server["port"], "GET", "/audio/0", headers={"Range": "bytes=100-199"})
    assert status == 206 and part == whole[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(whole)}"


def test_uploads_over_the_limit_are_refused_unread(server):
    status, body, _ = request(server["port"], "POST", "/api/upload?name=big.wav", body=b"x" * 300_000)
    assert status == 413 and b"at most 200000" in body
    status, body, _ = request(server["port"], "POST", "/api/upload?name=bad.wav", body=b"not audio")
    assert status == 400 and b"bad.wav" in body


def test_the_server_listens_on_localhost_unless_told_otherwise():
    import argparse

    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert parser.parse_args(["--index", "x"]).host == "127.0.0.1"
    assert make_server.__defaults__[0] == "127.0.0.1"


def test_queries_of_an_index_are_embedded_with_the_index_model_only(server, search_corpus, tmp_path):
    from inmsrl.search.index import SearchIndexError

    index = Index.open(server["root"] / "idx")
    np.testing.assert_array_equal(index.track_vectors("song1.wav").starts, np.arange(5.0))
    import torch

    other = torch.load(search_corpus[1] / "final.pt", weights_only=True)
    other["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in other["model"].items()}
    torch.save(other, tmp_path / "other.pt")
    with pytest.raises(SearchIndexError, match="not the model the index was built with"):
        index_embedder(index, tmp_path / "other.pt", device="cpu")
