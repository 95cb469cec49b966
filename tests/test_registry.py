"""Stage contracts, typed specs, the scheme table, encoder options and the source/sink registries."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from stylize_video.errors import InputError, OutputError, StylizeError
from stylize_video.io import registry
from stylize_video.io.base import Frame, Sink, Source, as_sink, as_source
from stylize_video.io.registry import open_sink, parse_input_spec, parse_output_spec, register_sink
from stylize_video.io.specs import (
    LIVE_SCHEMES,
    SCHEMES,
    STREAM_FORMATS,
    EncoderOptions,
    OutputSpec,
    SinkOptions,
    is_url,
    parse_bitrate,
)

ROOT = Path(__file__).resolve().parents[1] / "stylize_video"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("0", "camera"),
        ("/dev/video2", "camera"),
        ("synthetic:64x36@10:1s", "synthetic"),
        ("demo", "synthetic"),
        ("rtsp://cam.local/live", "network"),
        ("udp://127.0.0.1:5000", "network"),
        ("clip.mp4", "file"),
        ("https://example.com/clip.mp4", "file"),  # http may be a plain file: not live
        ("synthetic:bad", "file"),  # not the scene's syntax: a file name (that will not exist)
    ],
)
def test_input_specs_are_classified_once(text: str, kind: str) -> None:
    spec = parse_input_spec(f" {text} ")
    assert (spec.kind, spec.text) == (kind, text)


@pytest.mark.parametrize(
    ("text", "kind", "live"),
    [
        ("window", "window", False),
        ("null", "null", False),
        ("virtualcam", "virtualcam", True),
        ("virtualcam:/dev/video9", "virtualcam", True),
        ("http://127.0.0.1:8080/", "mjpeg", True),
        ("rtmp://host/live/key", "stream", True),
        ("srt://host:9000", "stream", True),
        ("out.mp4", "file", False),
    ],
)
def test_output_specs_are_classified_once(text: str, kind: str, live: bool) -> None:
    spec = parse_output_spec(text)
    assert (spec.kind, spec.live) == (kind, live)
    assert (spec.path is not None) == (kind == "file")


def test_output_spec_key_identifies_a_file_however_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_output_spec("a.mp4").key == parse_output_spec(str(tmp_path / "a.mp4")).key
    assert parse_output_spec("window").key == "window"


def test_unknown_schemes_and_empty_specs_are_refused() -> None:
    with pytest.raises(OutputError, match="unsupported URL scheme"):
        parse_output_spec("gopher://x")
    with pytest.raises(OutputError):
        parse_output_spec("  ")
    with pytest.raises(InputError):
        parse_input_spec("")


def test_one_scheme_table_feeds_every_list() -> None:
    from stylize_video.io import media, network_source, streaming

    assert tuple(SCHEMES) == media.URL_SCHEMES
    assert set(network_source.LIVE_SCHEMES) == set(LIVE_SCHEMES)
    assert set(streaming.STREAM_SCHEMES) == set(STREAM_FORMATS)
    assert STREAM_FORMATS["rtmp"] == "flv" and STREAM_FORMATS["udp"] == "mpegts"
    assert is_url("RTSPS://cam/x") and not is_url("C:/clips/a.mp4") and not is_url("take:2.mp4")


def test_encoder_options_validate_and_parse_bitrates() -> None:
    assert EncoderOptions.from_cli("hevc", 20, "4M", "slow") == EncoderOptions("hevc", 20, 4_000_000, "slow")
    assert parse_bitrate("800k") == 800_000 and parse_bitrate(None) is None
    with pytest.raises(StylizeError, match=r"crf must be within 0\.\.63, got 64"):
        EncoderOptions(crf=64)
    with pytest.raises(StylizeError, match="lots"):
        EncoderOptions.from_cli(bitrate="lots")
    with pytest.raises(AttributeError):
        EncoderOptions().crf = 3  # type: ignore[misc]  # frozen: passed whole, never edited on the way


class _Bare:
    """A sink written against the old duck-typed contract: write and close only."""

    def __init__(self) -> None:
        self.closed = 0

    def write(self, frame: Frame) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


class _BareSource:
    corrupt = 3

    def __iter__(self) -> Iterator[Frame]:
        return iter(())

    def close(self) -> None:
        pass


def test_duck_typed_stages_get_the_declared_defaults() -> None:
    bare = _Bare()
    sink = as_sink(bare)
    assert isinstance(sink, Sink) and sink.threaded and not sink.live and not sink.interactive
    assert sink.poll_actions() == [] and sink.path is None
    sink.set_status("x")
    sink.finish()
    sink.abort()  # no abort of its own: closing is the default
    assert bare.closed == 1
    src = as_source(_BareSource())
    assert isinstance(src, Source) and not src.live and src.corrupt == 3 and src.path is None
    assert src.frame_count is None and src.inputs == () and src.audio_path is None


def test_real_stages_pass_through_unwrapped(tmp_path: Path) -> None:
    from stylize_video.io.sinks import NullSink

    null = NullSink()
    assert as_sink(null) is null and not null.threaded


def test_pipeline_and_run_do_not_probe_stages() -> None:
    for rel in ("runtime/pipeline.py", "commands/run.py"):
        tree = ast.parse((ROOT / rel).read_text())
        probes = [
            n.func.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("getattr", "hasattr")
        ]
        assert probes == [], rel


def test_a_new_sink_is_one_registration(tmp_path: Path) -> None:
    class Gif(Sink):
        def __init__(self, spec: OutputSpec, options: SinkOptions) -> None:
            self.spec, self.options = spec, options

        def write(self, frame: Frame) -> None:
            pass

    register_sink("gif", lambda text: text.endswith(".gif"), Gif, local=True)
    try:
        sink = open_sink(str(tmp_path / "a.gif"), crf=20)
        assert isinstance(sink, Gif) and sink.spec.kind == "gif" and sink.options.encoder.crf == 20
        assert parse_output_spec("x.mp4").kind == "file"  # the fallback still comes last
    finally:
        registry._SINKS[:] = [r for r in registry._SINKS if r.kind != "gif"]


def test_a_missing_backend_module_is_one_clear_error() -> None:
    register_sink("nothing", "nothing".__eq__, "stylize_video.io.no_such_module:open_it")
    try:
        with pytest.raises(StylizeError, match="nothing outputs are not available"):
            open_sink("nothing")
    finally:
        registry._SINKS[:] = [r for r in registry._SINKS if r.kind != "nothing"]


def test_io_does_not_import_runtime_or_commands() -> None:
    for path in (ROOT / "io").glob("*.py"):
        text = path.read_text()
        assert "..runtime" not in text and "..commands" not in text, path.name
