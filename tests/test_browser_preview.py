"""The preview page in a real browser: headless Chromium driven by Playwright.

The page loads, frames arrive, and the controls (style list, blend slider, strength,
region, smoothing, snapshot) change what the running pipeline does. Needs the ``playwright``
Python package and a Chromium binary (the Debian ``chromium`` package, or
``STYLIZE_VIDEO_CHROMIUM=/path/to/chrome``); the tests skip without them. Playwright's
own browser download (``playwright install``) is never needed.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from stylize_video.controls import LiveControls
from stylize_video.io.base import Frame, Source
from stylize_video.io.mjpeg import MjpegSink
from stylize_video.person import REGIONS
from stylize_video.runtime.pipeline import Pipeline
from stylize_video.runtime.region import RegionStage
from tests.conftest import make_image
from tests.test_controls import STYLES, gallery_stylizer

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

CHROMIUM = os.environ.get("STYLIZE_VIDEO_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found (apt-get install chromium, or set STYLIZE_VIDEO_CHROMIUM)"
)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
H, W = 240, 320


class MovingScene(Source):
    """A live source: a still picture with a small block moving along its top edge (so frames differ)."""

    live = True
    fps = 20.0

    def __init__(self) -> None:
        self.base = make_image(H, W, seed=3)
        self.stopped = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        while not self.stopped.is_set():
            image = self.base.copy()
            x = (i * 9) % (W - 12)
            image[2:12, x : x + 12] = (255, 255, 255)
            yield Frame(image, i, time=i / self.fps, captured=time.perf_counter())
            i += 1
            time.sleep(1 / self.fps)

    def close(self) -> None:
        self.stopped.set()


@pytest.fixture
def preview(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., dict[str, Any]]]:
    """Start a pipeline on the tiny 3-style network serving the preview; yields a starter."""
    monkeypatch.chdir(tmp_path)  # snapshots land here
    torch.set_num_threads(1)
    running: list[tuple[Pipeline, threading.Thread, MovingScene]] = []

    def start(token: str | None = None, region: RegionStage | None = None) -> dict[str, Any]:
        stylizer = gallery_stylizer(3)
        stylizer.morph_seconds = 0.2
        controls = LiveControls()
        sink = MjpegSink(port=0, controls=controls, token=token)
        source = MovingScene()
        pipeline = Pipeline(source, stylizer, [sink], styles=STYLES, controls=controls, smoother=None, region=region)
        thread = threading.Thread(target=pipeline.run, name="test-pipeline", daemon=True)
        thread.start()
        running.append((pipeline, thread, source))
        return {"sink": sink, "controls": controls, "pipeline": pipeline, "source": source}

    yield start
    for pipeline, thread, source in running:
        pipeline.controls.quit()
        source.close()
        thread.join(10)
        assert not thread.is_alive()
        if pipeline.region is not None:
            pipeline.region.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _state(sink: MjpegSink) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
    try:
        headers = {"X-Stylize-Token": sink.token} if sink.token else {}
        conn.request("GET", "/state", headers=headers)
        r = conn.getresponse()
        assert r.status == 200
        return dict(json.loads(r.read()))
    finally:
        conn.close()


def _wait(what: str, test: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _shot(page: Any) -> np.ndarray:
    """The stream as the page shows it (BGR)."""
    png = page.locator("#stream").screenshot()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image.astype(np.float32)


def _below_block(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference away from the moving block (the lower two thirds)."""
    return float(np.abs(a[H // 3 :] - b[H // 3 :]).mean())


def _open(browser: Any, sink: MjpegSink) -> tuple[Any, list[str]]:
    """The preview page in a new tab, once its first frame has arrived; and the page's script errors."""
    page = browser.new_page(viewport={"width": 900, "height": 420}, device_scale_factor=1)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(sink.url)
    page.wait_for_function("document.getElementById('stream').naturalWidth > 0", timeout=10_000)
    return page, errors


def test_page_streams_and_its_controls_drive_the_pipeline(preview: Any, browser: Any, tmp_path: Path) -> None:
    run = preview()
    sink: MjpegSink = run["sink"]
    # Frames arrive: the image has the frame's size and what it shows changes (the block moves).
    page, errors = _open(browser, sink)
    assert page.evaluate("(s => [s.naturalWidth, s.naturalHeight])(document.getElementById('stream'))") == [W, H]
    first = _shot(page)
    time.sleep(0.4)
    second = _shot(page)
    assert float(np.abs(first - second).max()) > 50  # the stream updates
    noise = _below_block(first, second)  # same style: the lower part barely changes

    # The style list shows the loaded styles, the current one marked.
    page.wait_for_selector("#styles button.on")
    assert page.locator("#styles button").all_inner_texts() == STYLES
    assert page.locator("#styles button.on").inner_text() == "alpha"

    # The blend slider: from alpha to beta; the output changes and /state says so.
    assert page.locator("#ba").input_value() == "alpha" and page.locator("#bb").input_value() == "beta"
    before = _shot(page)
    page.locator("#bw").fill("0.5")
    _wait("the half blend", lambda: _state(sink)["blend"] == [["alpha", 0.5], ["beta", 0.5]])
    time.sleep(0.6)  # the morph (0.2 s) and a couple of frames
    half = _shot(page)
    assert _state(sink)["style"] == "alpha=0.5+beta=0.5"
    page.screenshot(path=str(tmp_path / "preview-blend.png"))
    page.locator("#bw").fill("1")
    _wait("the full blend", lambda: _state(sink)["blend"] == [["alpha", 0.0], ["beta", 1.0]])
    time.sleep(0.6)
    after = _shot(page)
    moved = _below_block(before, after)
    assert moved > max(8.0, 5 * noise), (moved, noise)
    assert 0 < _below_block(before, half) < moved  # half-way lies between the ends
    _wait("the page's blend line", lambda: "beta" in page.locator("#now").inner_text())
    assert page.locator("#bwv").inner_text() == "100%"

    # Picking another partner blends toward it at the slider's weight.
    page.locator("#bb").select_option("gamma")
    _wait("the gamma blend", lambda: _state(sink)["blend"] == [["alpha", 0.0], ["gamma", 1.0]])

    # Style list, strength, smoothing, snapshot.
    page.locator("#styles button", has_text="beta").click()
    _wait("style beta", lambda: _state(sink)["style"] == "beta")
    _wait("the marked style", lambda: page.locator("#styles button.on").inner_text() == "beta")
    page.locator("#strength").fill("0.3")
    _wait("strength 0.3", lambda: _state(sink)["strength"] == 0.3)
    assert page.locator("#sv").inner_text() == "30%"
    page.locator("#smooth").check()
    _wait("smoothing on", lambda: _state(sink)["smoothing"] is True)
    page.locator("#snap").click()
    _wait("a snapshot", lambda: _state(sink)["snapshots"] == 1)
    assert len(list(tmp_path.glob("snapshot-*.png"))) == 1
    _wait("the snapshot count on the page", lambda: page.locator("#snaps").inner_text() == "1 saved")
    assert page.locator("#scale").inner_text() == "1.00"
    assert page.locator("#morph").inner_text() == "0.2 s"

    # A refused request shows its reason on the page (the two selects name one style).
    page.locator("#bb").select_option("beta")
    page.locator("#ba").select_option("beta")
    _wait("the error line", lambda: "two different styles" in page.locator("#err").inner_text())
    page.screenshot(path=str(tmp_path / "preview.png"))
    assert errors == []


def test_page_with_a_token_threads_it_through(preview: Any, browser: Any) -> None:
    token = "t0ken-for-the-browser-test"
    run = preview(token=token)
    sink: MjpegSink = run["sink"]
    # The page's requests carry the token in their URLs, not only in the cookie.
    context = browser.new_context()
    page = context.new_page()
    assert page.goto(sink.url).status == 403  # no token, no page
    page.goto(f"{sink.url}?token={token}")
    page.wait_for_function("document.getElementById('stream').naturalWidth > 0", timeout=10_000)
    page.wait_for_selector("#styles button.on")
    page.locator("#styles button", has_text="gamma").click()
    _wait("style gamma", lambda: _state(sink)["style"] == "gamma")
    context.clear_cookies()
    page.locator("#strength").fill("0.6")
    _wait("strength 0.6 without the cookie", lambda: _state(sink)["strength"] == 0.6)


def test_region_buttons_switch_the_region(preview: Any, browser: Any) -> None:
    # The "person" is the left half of the frame (a fixed mask instead of the model).
    person = np.zeros((H, W), np.float32)
    person[:, : W // 2] = 1.0
    run = preview(region=RegionStage(lambda: lambda frame, motion=None: person))
    sink: MjpegSink = run["sink"]
    base = run["source"].base.astype(np.float32)
    page, errors = _open(browser, sink)
    assert page.locator("#regions button").all_inner_texts() == list(REGIONS)
    _wait("the marked region", lambda: page.locator("#regions button.on").inner_text() == "all")

    def unchanged(columns: slice) -> float:
        """How far the shown stream is from the source picture there (below the moving block)."""
        return float(np.abs(_shot(page)[H // 3 :, columns] - base[H // 3 :, columns]).mean())

    styled = unchanged(slice(0, W // 2))
    assert styled > 12.0  # the tiny network changes the picture, so "unchanged" can tell
    for region, kept in (("background", slice(0, W // 2)), ("person", slice(W // 2, W))):
        page.locator(f'#regions button[data-region="{region}"]').click()
        _wait(f"region {region} in /state", lambda r=region: _state(sink)["region"] == r)  # type: ignore[misc]
        _wait(f"the marked {region}", lambda r=region: page.locator("#regions button.on").inner_text() == r)  # type: ignore[misc]
        time.sleep(0.4)  # a couple of frames
        # The kept half shows the source (JPEG-compressed), the other half stays stylized.
        assert unchanged(kept) < min(6.0, styled / 3), (region, unchanged(kept), styled)
    page.locator('#regions button[data-region="all"]').click()
    _wait("region all in /state", lambda: _state(sink)["region"] == "all")
    time.sleep(0.4)
    _wait("the left half stylized again", lambda: unchanged(slice(0, W // 2)) > styled / 2)
    assert errors == []


def test_a_refused_control_is_explained_on_the_page(preview: Any, browser: Any) -> None:
    """A run without a person region: the region button goes back to "all" and the page says why."""
    run = preview()
    sink: MjpegSink = run["sink"]
    page, errors = _open(browser, sink)
    _wait("the first state", lambda: page.locator("#regions button.on").inner_text() == "all")
    assert page.locator("#err").inner_text() == ""
    page.locator('#regions button[data-region="background"]').click()
    _wait("the notice", lambda: "no person region" in page.locator("#err").inner_text())
    _wait("the marked region back to all", lambda: page.locator("#regions button.on").inner_text() == "all")
    assert _state(sink)["region"] == "all"
    assert errors == []
