"""The web UI's routes on a real uvicorn server: pages, and plotly.js from the installed plotly
package, gzipped, with a strong ETag, a long cache life and 304s for revalidations."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer

plotly = pytest.importorskip("plotly")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("ui") / "store") as server:
        yield server


@pytest.fixture()
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def raw_get(client: httpx.Client, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """A response and its body as sent (httpx would undo the gzip)."""
    with client.stream("GET", path, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def test_plotly_is_prepared_as_the_server_starts(live: LiveServer) -> None:
    """The first visitor does not wait for plotly.js to be read and gzipped."""
    plotly_asset: Any = live.app.state.plotly
    deadline = time.monotonic() + 30
    while plotly_asset._asset is None:
        assert time.monotonic() < deadline, "plotly.js was not prepared at startup"
        time.sleep(0.05)


def test_plotly_is_the_installed_package_file_gzipped(client: httpx.Client) -> None:
    response, body = raw_get(client, "/vendor/plotly.min.js", **{"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["vary"] == "Accept-Encoding"
    assert len(body) < PLOTLY_JS.stat().st_size / 2
    assert gzip.decompress(body) == PLOTLY_JS.read_bytes()


def test_plotly_without_gzip(client: httpx.Client) -> None:
    for encoding in ("identity", "br", "gzip;q=0"):
        response, body = raw_get(client, "/vendor/plotly.min.js", **{"Accept-Encoding": encoding})
        assert response.status_code == 200
        assert "content-encoding" not in response.headers
        assert body == PLOTLY_JS.read_bytes()


def test_plotly_cache_headers_and_etag(client: httpx.Client) -> None:
    gzipped = client.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    plain = client.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "identity"})
    etag = gzipped.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10  # a strong ETag
    assert plain.headers["etag"] == etag
    cache = gzipped.headers["cache-control"]
    assert "public" in cache
    assert int(cache.split("max-age=")[1].split(",")[0]) >= 7 * 24 * 3600
    assert gzipped.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("if_none_match", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_plotly_revalidation_is_a_304(client: httpx.Client, if_none_match: str) -> None:
    etag = client.get("/vendor/plotly.min.js").headers["etag"]
    response, body = raw_get(
        client,
        "/vendor/plotly.min.js",
        **{"If-None-Match": if_none_match.format(etag=etag), "Accept-Encoding": "gzip"},
    )
    assert response.status_code == 304
    assert body == b""
    assert response.headers["etag"] == etag
    assert "max-age" in response.headers["cache-control"]


def test_plotly_changed_is_a_200(client: httpx.Client) -> None:
    response = client.get("/vendor/plotly.min.js", headers={"If-None-Match": '"not-it"'})
    assert response.status_code == 200
    assert response.content == PLOTLY_JS.read_bytes()


def test_run_page_fetches_its_modules_and_plotly_early(client: httpx.Client) -> None:
    """The run page names every module it imports (fetched in parallel, not one level at a
    time) and preloads plotly.js at low priority, behind them."""
    page = client.get("/runs/1").text
    for module in ("api.js", "charts.js", "sketch.js", "files.js", "lineage.js"):
        assert f'<link rel="modulepreload" href="/static/{module}">' in page
    assert page.index("/static/run.js") < page.index("/vendor/plotly.min.js")
    assert 'href="/vendor/plotly.min.js" as="script" fetchpriority="low"' in page


def test_sweep_page_fetches_its_modules_and_plotly(client: httpx.Client) -> None:
    """The sweep page is served under the UI's policy and names every module it imports."""
    response = client.get("/sweeps/3")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    for module in ("api.js", "charts.js", "sketch.js", "parcoords.js"):
        assert f'<link rel="modulepreload" href="/static/{module}">' in response.text
    assert response.text.index("/static/sweep.js") < response.text.index("/vendor/plotly.min.js")
