"""The preview page's document, without a browser (tests/test_browser_preview.py drives it in one)."""

from __future__ import annotations

import http.client
import re

from stylize_video.controls import LiveControls
from stylize_video.io.mjpeg import MjpegSink
from stylize_video.io.preview_page import PAGE
from stylize_video.person import REGIONS


def test_page_has_a_region_control_that_posts_and_follows_state() -> None:
    buttons = re.findall(r'<button data-region="([a-z]+)"[^>]*>([a-z]+)</button>', PAGE)
    assert buttons == [(r, r) for r in REGIONS]  # one button per region, in the cycling order
    assert 'id="regions" role="group"' in PAGE
    assert "post({region: b.dataset.region})" in PAGE  # posts region= like the other controls
    assert "markRegion(s.region" in PAGE  # and shows what /state reports


def test_page_fetches_nothing_from_elsewhere() -> None:
    assert not re.search(r"(https?:)?//[a-z0-9]", PAGE, re.IGNORECASE)


def test_served_page_carries_the_region_control() -> None:
    sink = MjpegSink(port=0, controls=LiveControls())
    try:
        conn = http.client.HTTPConnection(sink.host, sink.port, timeout=5)
        try:
            conn.request("GET", "/")
            body = conn.getresponse().read().decode()
        finally:
            conn.close()
    finally:
        sink.close()
    assert 'data-region="background"' in body and 'data-region="person"' in body
    assert '<div id="panel" hidden' not in body  # with controls the panel shows
