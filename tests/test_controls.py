"""LiveControls: merged requests, text commands, stdin reader and signal handlers."""

from __future__ import annotations

import io
import os
import signal
import threading

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
        "styles": styles,
        "strength": 0.3,
        "smoothing": True,
        "snapshots": 1,
        "scale": 1.0,
        "region": "all",  # no person stage in this run: reported as the whole frame
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
    assert c.poll() == ControlChanges(smoothing=True, strength_steps=(0.1, -0.1), quit=True, region="background")
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
