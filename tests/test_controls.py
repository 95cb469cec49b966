"""LiveControls: merged requests, text commands, stdin reader and signal handlers."""

from __future__ import annotations

import functools
import io
import itertools
import os
import signal
import threading
import time

import numpy as np
import pytest

from stylize_video.runtime.controls import ControlChanges, LiveControls, install_signal_handlers, start_stdin_reader


def test_requests_merge_between_polls() -> None:
    c = LiveControls()
    assert not c.poll()
    for _ in range(3):
        c.next_style()
    c.prev_style()
    c.set_strength(0.2)
    c.set_strength(0.6)
    c.toggle_smoothing()
    c.toggle_smoothing()
    c.toggle_smoothing()
    changes = c.poll()
    assert changes == ControlChanges(style_step=2, strength=0.6, smoothing=True)
    assert not c.poll()
    with pytest.raises(ValueError, match=r"0\.\.1"):
        c.set_strength(1.2)


def test_toggle_is_relative_to_reported_state() -> None:
    c = LiveControls(smoothing=False)
    c.report(smoothing=True)
    c.toggle_smoothing()
    assert c.poll().smoothing is False
    with pytest.raises(TypeError, match="colour"):
        c.report(colour="red")


def test_pick_style_cycles() -> None:
    styles = ["a", "b", "c"]
    assert ControlChanges(style_step=1).pick_style(styles, "c") == "a"
    assert ControlChanges(style_step=-1).pick_style(styles, "a") == "c"
    assert ControlChanges(style="b", style_step=1).pick_style(styles, "a") == "c"
    assert ControlChanges().pick_style([], "x") == "x"
    with pytest.raises(ValueError, match="unknown style 'z'"):
        ControlChanges(style="z").pick_style(styles, "a")


def test_text_commands_and_stdin_reader() -> None:
    c = LiveControls()
    assert not c.apply_command("fly away")
    assert not c.apply_command("strength lots")
    assert not c.poll()
    thread = start_stdin_reader(c, io.StringIO("style candy\nnext\nn\np\n0.25\nsmooth on\nsnap\nbogus\n"))
    thread.join(5)
    assert not thread.is_alive()  # ends at end of input
    assert c.poll() == ControlChanges(style_step=1, style="candy", strength=0.25, smoothing=True, snapshot=True)


def test_stdin_reader_waits_out_read_errors() -> None:
    # A background job reading its terminal gets EIO (SIGTTIN ignored): wait, then go on.
    class Flaky(io.StringIO):
        failures = 2

        def readline(self, *args: object) -> str:  # type: ignore[override]
            if self.failures:
                self.failures -= 1
                raise OSError(5, "Input/output error")
            return super().readline()

    c = LiveControls()
    thread = start_stdin_reader(c, Flaky("next\n"), retry_s=0.01)
    thread.join(5)
    assert not thread.is_alive() and c.poll() == ControlChanges(style_step=1)


@pytest.mark.skipif(not hasattr(signal, "SIGTTIN"), reason="no job control on this platform")
def test_background_reads_are_ignored_then_restored() -> None:
    from stylize_video.runtime.controls import ignore_background_reads

    before = signal.getsignal(signal.SIGTTIN)
    restore = ignore_background_reads()
    assert signal.getsignal(signal.SIGTTIN) == signal.SIG_IGN
    restore()
    assert signal.getsignal(signal.SIGTTIN) == before


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_signals_switch_styles() -> None:
    assert threading.current_thread() is threading.main_thread()
    c = LiveControls()
    before = signal.getsignal(signal.SIGUSR1)
    restore = install_signal_handlers(c)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
        assert c.poll().style_step == 1
    finally:
        restore()
    assert signal.getsignal(signal.SIGUSR1) is before


class _Frames:
    live = False

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):  # type: ignore[no-untyped-def]
        from stylize_video.io.base import Frame
        from tests.conftest import make_image

        for i in range(self.n):
            yield Frame(make_image(16, 24, seed=i), i)

    def close(self) -> None:
        pass


class _Keep:
    def __init__(self) -> None:
        self.frames: list[object] = []

    def write(self, frame: object) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        pass


def test_pipeline_applies_live_controls(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from stylize_video.models.transform_net import TransformNet
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.stylizer import Stylizer
    from tests.conftest import TINY

    monkeypatch.chdir(tmp_path)
    stylizer = Stylizer(TransformNet(TINY).eval(), device="cpu")
    other = stylizer.preload(TransformNet(TINY).eval())[0]
    styles = [stylizer.style_name, other]
    controls = LiveControls()
    controls.next_style()
    controls.set_strength(0.3)
    controls.set_smoothing(True)
    controls.snapshot()
    sink = _Keep()
    pipeline = Pipeline(_Frames(3), stylizer, [sink], styles=styles, controls=controls)
    stats = pipeline.run()
    assert stats.frames == 3 and len(sink.frames) == 3
    assert stylizer.style_name == other and stylizer.strength == 0.3
    assert len(pipeline.snapshots) == 1 and pipeline.snapshots[0].exists()
    assert controls.state() == {
        "style": other,
        "blend": [(other, 1.0)],
        "morph": 0.0,
        "styles": styles,
        "strength": 0.3,
        "smoothing": True,
        "snapshots": 1,
        "scale": 1.0,
        "region": "all",  # no person stage in this run: reported as the whole frame
        "notice": "",
        "notices": 0,
    }


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc (unwritable even for root)")
def test_a_failed_snapshot_does_not_end_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from stylize_video.models.transform_net import TransformNet
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.stylizer import Stylizer
    from tests.conftest import TINY

    monkeypatch.chdir("/proc")  # snapshots go to the working folder; here they cannot be written
    controls = LiveControls()
    controls.snapshot()
    sink = _Keep()
    pipeline = Pipeline(_Frames(3), Stylizer(TransformNet(TINY).eval(), device="cpu"), [sink], controls=controls)
    stats = pipeline.run()
    assert stats.frames == 3 and len(sink.frames) == 3 and stats.error is None
    assert pipeline.snapshots == []


def test_one_vocabulary_feeds_keys_typed_commands_http_and_signals() -> None:
    from stylize_video.controls import COMMANDS, KEY_COMMANDS, apply_remote, parse_command
    from stylize_video.io.window import KEY_ACTIONS

    assert KEY_ACTIONS == KEY_COMMANDS and KEY_ACTIONS[ord("q")] == KEY_ACTIONS[27] == "quit"
    assert {KEY_ACTIONS[ord(k)] for k in "np+-t"} == {
        "next_style",
        "prev_style",
        "strength_up",
        "strength_down",
        "toggle_smoothing",
    }
    c = LiveControls()
    for command in COMMANDS:  # every window action is also a typed command, by its name
        if command.keys:
            assert c.apply_command(command.name), command.name
    assert c.poll() == ControlChanges(
        smoothing=True,
        strength_steps=(0.1, -0.1),
        quit=True,
        partner_step=1,
        blend_steps=(0.1, -0.1),
        region="background",
    )
    assert {KEY_ACTIONS[ord(k)] for k in "b[]"} == {"blend_partner", "blend_less", "blend_more"}
    assert {cmd.signal for cmd in COMMANDS if cmd.signal} == {"SIGUSR1", "SIGUSR2"}
    with pytest.raises(ValueError, match=r"strength must be within 0\.\.1, got 2"):
        parse_command("strength 2", c)
    with pytest.raises(ValueError, match="unknown command 'fly'"):
        parse_command("fly away", c)
    with pytest.raises(ValueError, match="next takes no value"):
        parse_command("next 2", c)
    # Over HTTP the same words are parameters; quitting is not offered to viewers.
    assert apply_remote(c, [("style", "prev"), ("strength", "0.4"), ("smooth", "off")]) == {
        "style": "prev",
        "strength": "0.4",
        "smooth": "off",
    }
    assert c.poll() == ControlChanges(style_step=-1, strength=0.4, smoothing=False)
    with pytest.raises(ValueError, match="unknown control 'quit'"):
        apply_remote(c, [("quit", "")])
    assert not c.poll()


def test_typed_quit_and_strength_steps_reach_the_pipeline() -> None:
    from stylize_video.models.transform_net import TransformNet
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.stylizer import Stylizer
    from tests.conftest import TINY

    controls = LiveControls()
    for line in ("strength 0.95", "+", "-", "quit"):
        assert controls.apply_command(line)
    stylizer = Stylizer(TransformNet(TINY).eval(), device="cpu")
    sink = _Keep()
    stats = Pipeline(_Frames(50), stylizer, [sink], controls=controls).run()
    assert stats.stopped and stats.frames < 50
    assert stylizer.strength == 0.9  # 0.95 -> 1.0 (clamped) -> 0.9: steps apply in order, as keys did


def test_controls_the_pipeline_cannot_apply_become_notices_for_the_clients(caplog: pytest.LogCaptureFixture) -> None:
    """A region in a run without a person region, a style that is not loaded: the log and
    the controls' state (what the preview page polls) both say why."""
    from stylize_video.models.transform_net import TransformNet
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.stylizer import Stylizer
    from tests.conftest import TINY

    controls = LiveControls()
    assert controls.state()["notices"] == 0 and controls.state()["notice"] == ""
    controls.set_region("background")
    controls.set_style("nowhere")
    assert controls.apply_command("quit")
    stylizer = Stylizer(TransformNet(TINY).eval(), device="cpu")
    with caplog.at_level("WARNING", logger="stylize_video"):
        Pipeline(_Frames(5), stylizer, [_Keep()], controls=controls).run()
    state = controls.state()
    assert state["notices"] == 2
    assert "region background: this run has no person region" in state["notice"]  # the latest one
    assert any("this run has no person region" in r.getMessage() for r in caplog.records)
    assert any("unknown style 'nowhere'" in r.getMessage() for r in caplog.records)


def test_a_refused_key_shows_its_reason_in_the_window_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """The window's r key in a run without a person region: the status line says why."""
    from stylize_video.io.base import Sink
    from stylize_video.models.transform_net import TransformNet
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.stylizer import Stylizer
    from tests.conftest import TINY

    class Window(Sink):
        threaded = False  # drawn on the main thread, like the OpenCV window

        def __init__(self) -> None:
            self.statuses: list[str] = []
            self.keys = ["region background"]

        def write(self, frame: object) -> None:
            pass

        def poll_actions(self) -> list[str]:
            keys, self.keys = self.keys, []
            return keys

        def set_status(self, text: str) -> None:
            self.statuses.append(text)

    window = Window()
    stylizer = Stylizer(TransformNet(TINY).eval(), device="cpu")
    Pipeline(_Frames(4), stylizer, [window], controls=LiveControls()).run()
    assert window.statuses and all("region background: this run has no person region" in s for s in window.statuses)
    # ... for NOTICE_SECONDS only
    monkeypatch.setattr("stylize_video.runtime.pipeline_controls.NOTICE_SECONDS", 0.0)
    window = Window()
    Pipeline(_Frames(4), stylizer, [window], controls=LiveControls()).run()
    assert window.statuses and not any("person region" in s for s in window.statuses)


# ------------------------------------------------------------------ blends and morphs
STYLES = ["alpha", "beta", "gamma"]


def _loaded(styles: list[str] = STYLES) -> LiveControls:
    c = LiveControls()
    c.report(styles=styles)
    return c


def gallery_stylizer(n: int = 3, **kwargs: object):  # type: ignore[no-untyped-def]
    """A Stylizer over one tiny multi-style network whose styles are named alpha, beta, gamma..."""
    import copy

    import torch

    from stylize_video.models.checkpoint import Checkpoint, CheckpointMeta, StyleInfo
    from stylize_video.models.transform_net import TransformNet
    from stylize_video.runtime.stylizer import Stylizer
    from tests.conftest import TINY

    singles = []
    for seed in range(n):
        net = TransformNet(TINY).eval() if not singles else copy.deepcopy(singles[0])
        g = torch.Generator().manual_seed(100 + seed)
        with torch.no_grad():  # another 'style' on the same convs: random instance-norm affines
            for _, norm in net.norms():
                norm.weight.copy_(1 + 0.8 * torch.randn(norm.weight.shape, generator=g))
                norm.bias.copy_(0.8 * torch.randn(norm.bias.shape, generator=g))
        singles.append(net)
    gallery = TransformNet.from_single(singles).eval()
    names = ["alpha", "beta", "gamma", "delta"][:n]
    meta = CheckpointMeta(name="gallery", arch=gallery.config, styles=[StyleInfo(name=x) for x in names])
    return Stylizer(Checkpoint(gallery, meta), device="cpu", **kwargs)


def test_blend_command_parses_normalises_and_keeps_a_zero_partner() -> None:
    from stylize_video.controls import format_blend, parse_blend, parse_command

    c = _loaded()
    parse_command("blend alpha=0.7+beta=0.3", c)(c)
    assert c.poll() == ControlChanges(blend=(("alpha", 0.7), ("beta", 0.3)))
    parse_command("mix alpha=7 gamma=3", c)(c)  # spaces count as '+' (an unencoded '+' in a URL is one)
    assert c.poll().blend == (("alpha", 0.7), ("gamma", 0.3))
    assert parse_blend("alpha=1+beta=0") == (("alpha", 1.0), ("beta", 0.0))
    assert parse_blend("alpha+beta") == (("alpha", 0.5), ("beta", 0.5))
    assert format_blend((("alpha", 1.0), ("beta", 0.0))) == "alpha"
    assert format_blend((("alpha", 0.75), ("beta", 0.25))) == "alpha=0.75+beta=0.25"
    for bad, reason in [
        ("blend zebra=1", r"unknown style 'zebra' \(loaded: alpha, beta, gamma\)"),
        ("blend alpha=1+beta=-1", "must be >= 0"),
        ("blend alpha=x", "is not a number"),
        ("blend alpha=0+beta=0", "sum to 0"),
        ("blend alpha=inf", "must be >= 0"),
        ("blend alpha+alpha", "twice"),
        ("blend", "blend needs a spec"),
        ("morph -1", r"within 0\.\.60"),
        ("morph nan", r"within 0\.\.60"),
        ("morph soon", "a number of seconds"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_command(bad, c)
    parse_command("morph 1.5", c)(c)
    assert c.poll() == ControlChanges(morph=1.5)


def test_blend_and_style_requests_replace_each_other() -> None:
    c = _loaded()
    c.set_blend((("alpha", 0.5), ("beta", 0.5)))
    c.set_style("gamma")
    assert c.poll() == ControlChanges(style="gamma")
    c.next_partner()
    c.step_blend(0.1)
    c.set_blend((("beta", 1.0),))  # a whole blend wins over the steps before it
    assert c.poll() == ControlChanges(blend=(("beta", 1.0),))
    c.set_blend((("beta", 1.0),))
    c.next_style()  # the later request wins
    assert c.poll() == ControlChanges(style_step=1)
    with pytest.raises(ValueError, match=r"weights within 0\.\.1"):
        c.set_blend((("beta", 2.0),))


def test_pick_blend_partner_and_weight_steps() -> None:
    alone = (("alpha", 1.0),)
    assert ControlChanges(partner_step=1).pick_blend(STYLES, alone) == (("alpha", 0.5), ("beta", 0.5))
    assert ControlChanges(partner_step=2).pick_blend(STYLES, alone) == (("alpha", 0.5), ("gamma", 0.5))
    assert ControlChanges(blend_steps=(0.1,)).pick_blend(STYLES, alone) == (("alpha", 0.9), ("beta", 0.1))
    pair = (("alpha", 0.9), ("beta", 0.1))
    assert ControlChanges(partner_step=1).pick_blend(STYLES, pair) == (("alpha", 0.9), ("gamma", 0.1))
    assert ControlChanges(partner_step=2).pick_blend(STYLES, pair) == pair  # beta -> gamma -> beta (never alpha)
    # Weight steps clamp at the ends and the pair is remembered there, so '[' comes back.
    at_end = ControlChanges(blend_steps=(0.1,) * 12).pick_blend(STYLES, pair)
    assert at_end == (("alpha", 0.0), ("beta", 1.0))
    assert ControlChanges(blend_steps=(-0.1,)).pick_blend(STYLES, at_end) == (("alpha", 0.1), ("beta", 0.9))
    # n/p move on from the style that dominates; a blend of three is reduced to its two heaviest.
    assert ControlChanges(style_step=1).pick_blend(STYLES, at_end) == (("gamma", 1.0),)
    assert ControlChanges(style_step=1).pick_blend(STYLES, pair) == (("beta", 1.0),)
    three = (("alpha", 0.2), ("beta", 0.5), ("gamma", 0.3))
    assert ControlChanges(blend_steps=(0.1,)).pick_blend(STYLES, three) == (("beta", 0.53), ("gamma", 0.47))
    # A blend entry of the style list is its parts; one loaded style has nothing to blend with.
    listed = ["alpha=0.5+beta=0.5", "alpha", "beta"]
    got = ControlChanges(style="alpha=0.5+beta=0.5").pick_blend(listed, alone)
    assert got == (("alpha", 0.5), ("beta", 0.5))
    assert ControlChanges(partner_step=1).pick_blend(["alpha"], alone) == alone


def test_style_switch_morphs_over_frame_time_without_dropping_frames() -> None:
    from stylize_video.runtime.pipeline import Pipeline
    from tests.test_pipeline import ListSink, ListSource

    stylizer = gallery_stylizer(2)
    stylizer.morph_seconds = 0.5  # 12.5 frames at 25 fps
    weights: list[float] = []
    stylize = stylizer.stylize

    def spy(x, *, now=None):  # type: ignore[no-untyped-def]
        weights.append(stylizer.blend(now).get("beta", 0.0))
        return stylize(x, now=now)

    stylizer.stylize = spy  # type: ignore[method-assign]
    controls = LiveControls()
    sink = ListSink()

    def on_frame(frame):  # type: ignore[no-untyped-def]
        if frame.index == 5:
            controls.set_style("beta")

    n = 30
    pipeline = Pipeline(ListSource(n), stylizer, [sink], styles=["alpha", "beta"], controls=controls, on_frame=on_frame)
    t0 = time.perf_counter()
    stats = pipeline.run()
    wall = time.perf_counter() - t0
    assert stats.frames == n and len(sink.frames) == n and stats.dropped == 0
    assert [f.index for f in sink.frames] == list(range(n))
    assert weights[:6] == [0.0] * 6
    assert all(b >= a for a, b in itertools.pairwise(weights))  # monotone
    done = next(i for i, w in enumerate(weights) if w > 0.999)
    assert 17 <= done <= 19, weights  # about 0.5 s of frame time after the switch at frame 5
    assert 0.0 < weights[6] < 0.1 and 0.3 < weights[11] < 0.7
    assert stylizer.clock is time.monotonic  # the stylizer's own clock is back after the run
    assert wall < 5  # frame time, not wall time: the run took no 0.5 s per morph
    assert controls.state()["style"] == "beta" and controls.state()["blend"] == [("beta", 1.0)]
    # The middle of the morph is neither end.
    a, mid, b = (sink.frames[i].image.astype(float) for i in (5, 11, 25))
    assert np.abs(mid - a).mean() > 1 and np.abs(mid - b).mean() > 1


def test_morph_zero_cuts_and_keys_blend_in_the_pipeline() -> None:
    from stylize_video.runtime.pipeline import Pipeline
    from tests.test_pipeline import ListSink, ListSource

    stylizer = gallery_stylizer(3)
    stylizer.morph_seconds = 0.5
    controls = LiveControls()
    seen: list[tuple[str, float]] = []
    plan = {
        2: [LiveControls.next_partner],
        4: [functools.partial(LiveControls.step_blend, delta=0.1)] * 2,
        6: [LiveControls.next_partner],
        8: [functools.partial(LiveControls.set_morph, seconds=0.0)],
    }

    def on_frame(frame):  # type: ignore[no-untyped-def]
        seen.append((stylizer.style_name, stylizer.blend().get("beta", 0.0)))
        for request in plan.get(frame.index, []):
            request(controls)
        if frame.index == 9:
            assert controls.apply_command("blend alpha=0.25+beta=0.75")

    pipeline = Pipeline(ListSource(12), stylizer, [ListSink()], styles=STYLES, controls=controls, on_frame=on_frame)
    assert pipeline.run().frames == 12
    assert seen[3][0] == "alpha=0.5+beta=0.5"
    assert seen[5][0] == "alpha=0.3+beta=0.7"
    assert seen[7][0] == "alpha=0.3+gamma=0.7"
    assert seen[10] == ("alpha=0.25+beta=0.75", 0.75)  # morph 0: the next frame has it all
    state = controls.state()
    assert state["blend"] == [("alpha", 0.25), ("beta", 0.75)] and state["morph"] == 0.0


def test_http_blend_parameters_are_validated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import http.client
    import json

    from stylize_video.io.mjpeg import MjpegSink

    controls = _loaded()
    with MjpegSink(port=0, controls=controls) as sink:

        def post(query: str) -> tuple[int, dict[str, object]]:
            conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
            try:
                conn.request("POST", "/control?" + query)
                r = conn.getresponse()
                return r.status, json.loads(r.read())
            finally:
                conn.close()

        for query, reason in [
            ("blend=zebra%3D1", "unknown style 'zebra'"),
            ("blend=alpha%3D-1%2Bbeta%3D1", "must be >= 0"),
            ("blend=alpha%3Dlots", "is not a number"),
            ("blend=%20", "blend needs a spec"),
            ("blend=alpha&morph=-2", "morph must be within"),
            ("blend=/etc/passwd", "unknown style '/etc/passwd'"),
        ]:
            status, body = post(query)
            assert status == 400 and reason in str(body["error"]) and "\n" not in str(body["error"]), query
        assert not controls.poll()  # all or nothing
        status, body = post("blend=alpha%3D0.7%2Bbeta%3D0.3&morph=1")
        assert status == 200 and body["accepted"] == {"blend": "alpha=0.7+beta=0.3", "morph": "1"}
        assert controls.poll() == ControlChanges(blend=(("alpha", 0.7), ("beta", 0.3)), morph=1.0)
        status, _ = post("blend=alpha=0.5+gamma=0.5")  # unencoded: '+' arrives as a space
        assert status == 200 and controls.poll().blend == (("alpha", 0.5), ("gamma", 0.5))
        controls.report(style="alpha=0.5+gamma=0.5", blend=[("alpha", 0.5), ("gamma", 0.5)])
        conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
        conn.request("GET", "/state")
        state = json.loads(conn.getresponse().read())
        conn.close()
        assert state["style"] == "alpha=0.5+gamma=0.5" and state["blend"] == [["alpha", 0.5], ["gamma", 0.5]]


def test_run_morph_option(tmp_path, tiny_checkpoint, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from stylize_video.cli import build_parser, main
    from stylize_video.runtime.stylizer import Stylizer

    args = build_parser().parse_args(["run", "-i", "synthetic"])
    assert args.morph == Stylizer.DEFAULT_MORPH_SECONDS
    out = tmp_path / "o.mp4"
    common = ["run", "-i", "synthetic:48x32@10:0.3s", "-o", str(out), "-s", str(tiny_checkpoint), "--no-progress"]
    assert main([*common, "--morph", "-1"]) != 0
    err = capsys.readouterr().err
    assert "--morph must be within 0..60 seconds, got -1" in err and "Traceback" not in err and not out.exists()
    seen: list[float] = []
    real = Stylizer.stylize

    def spy(self, x, *, now=None):  # type: ignore[no-untyped-def]
        seen.append(self.morph_seconds)
        return real(self, x, now=now)

    monkeypatch.setattr(Stylizer, "stylize", spy)
    assert main([*common, "--morph", "2", "--threads", "1"]) == 0
    assert seen and set(seen) == {2.0}
