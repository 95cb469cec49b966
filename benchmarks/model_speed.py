"""Model-only speed: fps and p50/p95 latency of each preset x resolution x precision
x mode, peak memory, FLOPs per pixel, and the time over the hardware floor.

    python -m benchmarks.model_speed --quick          # CPU: ~15 min on a busy 2-core machine
    python -m benchmarks.model_speed --device cuda    # all presets/resolutions on a GPU

Modes (all through the project's ``Stylizer``, on a frame already on the device):

* ``eager``          contiguous (NCHW) layout;
* ``channels_last``  NHWC layout, the engine's default;
* ``channels_last+io`` the same plus upload/download: uint8 BGR numpy in and out;
* ``compiled``       channels_last + ``torch.compile`` (first-call time reported);
* ``cuda_graph``     channels_last, the network captured once and replayed (CUDA only).

Floors: the compute floor is the network's convolution FLOPs over the best FLOP/s a
large matmul reaches here in that dtype; the memory floor is the bytes an ideally
fused network must move (each convolution reads its input and weights once and writes
its output once) over the bandwidth of a large copy. ``x floor`` is the median
latency over the larger of the two.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.harness import (
    RESOLUTIONS,
    PeakMemory,
    Timing,
    command_line,
    every_round,
    interleaved,
    machine_info,
    measure_bandwidth,
    measure_peak_flops,
    sync_for,
    synthetic_frames,
    time_fn,
    write_results,
)
from stylize_video.devices import resolve_device
from stylize_video.errors import DeviceError
from stylize_video.models.transform_net import PRESETS, TransformNet, count_flops_per_pixel
from stylize_video.runtime.stylizer import Stylizer, pick_dtype

ALL_MODES = ("eager", "channels_last", "channels_last+io", "compiled", "cuda_graph")
DTYPE_BYTES = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}


# --------------------------------------------------------- traffic counting


def _padded(config_stride: int, w: int, h: int) -> tuple[int, int]:
    return -(-w // config_stride) * config_stride, -(-h // config_stride) * config_stride


def ideal_bytes_per_pixel(net: TransformNet, elem_bytes: int) -> tuple[float, float]:
    """(activation bytes per input pixel, weight bytes) an ideally fused network moves.

    Each convolution reads its input once and writes its output once; norms,
    activations, padding and upsampling are assumed fused into the convolutions.
    Measured with hooks on a stride-multiple input, where it is exact per pixel.
    """
    side = 16 * net.stride
    acts = 0
    weights = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal acts, weights
        acts += inp[0].numel() + out.numel()
        weights += sum(p.numel() for p in mod.parameters(recurse=False))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            net(torch.rand(1, 3, side, side))
    finally:
        for h in handles:
            h.remove()
    return acts * elem_bytes / side**2, float(weights * elem_bytes)


class _TrafficCounter(TorchDispatchMode):
    """Sums the bytes of every tensor each aten op reads and writes (eager traffic)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in _tensors((args, kwargs, out)):
            self.bytes += t.numel() * t.element_size()
        return out


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def eager_bytes_per_pixel(net: TransformNet, elem_bytes: int) -> float:
    """Bytes read + written per input pixel by the unfused eager network (fp32 run,
    scaled to ``elem_bytes``); an upper bound on its traffic (caches ignored)."""
    side = 16 * net.stride
    counter = _TrafficCounter()
    with torch.inference_mode(), counter:
        net(torch.rand(1, 3, side, side))
    return counter.bytes / side**2 * elem_bytes / 4


# ----------------------------------------------------------------- runners


@dataclass
class Runner:
    fn: Callable[[], Any]
    first_call_s: float
    keepalive: Any = None


def make_runner(net: TransformNet, device: torch.device, precision: str, mode: str, w: int, h: int) -> Runner:
    """Build the callable that processes one frame in ``mode`` (raises DeviceError
    or RuntimeError where the device can't)."""
    frame = synthetic_frames(w, h, count=1)[0]
    if mode == "cuda_graph" and device.type != "cuda":
        raise DeviceError("CUDA graphs need a CUDA device")
    stylizer = Stylizer(
        net,
        device=device,
        precision=precision,
        channels_last=mode != "eager",
        compile=mode == "compiled",
    )
    sync = sync_for(device)
    x = stylizer.transfer.upload(frame)
    if mode == "channels_last+io":

        def fn() -> Any:
            return stylizer(frame)

    elif mode == "cuda_graph":
        model = stylizer._model  # the prepared network: capturing needs the raw module
        static_x = x.clone()
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.inference_mode():
            with torch.cuda.stream(side):
                for _ in range(3):  # cuDNN picks algorithms outside the capture
                    model(static_x)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_y = model(static_x)

        def fn() -> Any:
            graph.replay()
            return static_y

    else:

        def fn() -> Any:
            return stylizer.stylize(x)

    t0 = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - t0
    return Runner(fn, first, keepalive=stylizer)


# -------------------------------------------------------------------- grid


@dataclass
class GridSpec:
    presets: list[str]
    resolutions: list[str]
    precisions: list[str]
    modes: list[str]
    rounds: int = 3
    iters_per_round: int = 3
    warmup: int = 1
    max_seconds: float = 4.0
    quick: bool = False
    deadline: float | None = None  # time.perf_counter() value after which configs are skipped
    threads: list[int | None] = field(default_factory=lambda: [None])


def _skip_reason(spec: GridSpec, device: torch.device, preset: str, res: str, precision: str, mode: str) -> str | None:
    try:
        pick_dtype(device, precision)
    except DeviceError as exc:
        return str(exc)
    if mode == "cuda_graph" and device.type != "cuda":
        return "CUDA only"
    if spec.quick and device.type == "cpu":
        w, h = RESOLUTIONS[res]
        if preset == "full" and w * h > 640 * 480:
            return "--quick: full only at 640x480 on CPU"
        if mode == "compiled" and res != "640x480":
            return "--quick: compiled only at 640x480 on CPU"
        if mode in ("eager", "channels_last+io") and w * h > 1280 * 720:
            return "--quick: only channels_last above 1280x720 on CPU"
    if spec.deadline is not None and time.perf_counter() > spec.deadline:
        return "time budget spent"
    return None


def _note_load(loads: list[float]) -> None:
    loads.append(os.getloadavg()[0])


def _round_timer(
    fn: Callable[[], Any], nthreads: int | None, spec: GridSpec, sync: Callable[[], None]
) -> Callable[[int], Timing]:
    """One contender of the interleaved grid: its share of the samples in round ``r``
    (warm-up calls only in round 0), with its thread count set first."""

    def run(r: int) -> Timing:
        if nthreads is not None:
            torch.set_num_threads(nthreads)
        return time_fn(
            fn,
            warmup=spec.warmup if r == 0 else 0,
            iters=spec.iters_per_round,
            max_seconds=spec.max_seconds / spec.rounds,
            min_iters=1,
            sync=sync,
        )

    return run


def run_grid(spec: GridSpec, device: torch.device, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every config of ``spec`` on ``device``; modes of one preset x resolution
    x precision are timed interleaved (round robin) so background load hits all alike."""
    default_threads = torch.get_num_threads()
    spec.threads = [t if t is not None else default_threads for t in spec.threads]
    dtypes = {p: d for p in spec.precisions if (d := _try_dtype(device, p)) is not None}
    log(f"measuring ceilings on {device} ...")
    # One ceiling per thread count: the floor of a 1-thread run is one core's peak.
    peak_flops: dict[tuple[str, int | None], float] = {}
    bandwidth: dict[int | None, float] = {}
    ceilings = []
    for nthreads in spec.threads if device.type == "cpu" else [None]:
        if nthreads is not None:
            torch.set_num_threads(nthreads)
        suffix = f", {nthreads} threads" if nthreads is not None else ""
        for p, d in dtypes.items():
            peak_flops[(p, nthreads)] = measure_peak_flops(device, d, reps=8)
            ceilings.append(
                {"what": f"matmul {p}{suffix}", "value": round(peak_flops[(p, nthreads)] / 1e9, 1), "unit": "GFLOP/s"}
            )
        bandwidth[nthreads] = measure_bandwidth(device, reps=8)
        ceilings.append(
            {
                "what": f"copy bandwidth (read+write){suffix}",
                "value": round(bandwidth[nthreads] / 1e9, 1),
                "unit": "GB/s",
            }
        )
    torch.set_num_threads(default_threads)
    for c in ceilings:
        log(f"  {c['what']}: {c['value']} {c['unit']}")

    presets_rows = []
    rows: list[dict[str, Any]] = []
    for preset in spec.presets:
        torch.manual_seed(0)
        net = TransformNet(PRESETS[preset]).eval()
        fpp = count_flops_per_pixel(net.config)
        act_bpp, weight_b = ideal_bytes_per_pixel(net, 4)
        eager_bpp = eager_bytes_per_pixel(net, 4)
        presets_rows.append(
            {
                "preset": preset,
                "kFLOPs/pixel": round(fpp / 1e3, 2),
                "params": sum(p.numel() for p in net.parameters()),
                "stride": net.stride,
                "ideal bytes/pixel fp32": round(act_bpp, 1),
                "eager bytes/pixel fp32": round(eager_bpp, 1),
            }
        )
        for res in spec.resolutions:
            w, h = RESOLUTIONS[res]
            pw, ph = _padded(net.stride, w, h)
            gflop = fpp * pw * ph / 1e9
            for precision in spec.precisions:
                runners: dict[str, Runner] = {}
                mems: dict[str, PeakMemory] = {}
                for mode in spec.modes:
                    reason = _skip_reason(spec, device, preset, res, precision, mode)
                    if reason is not None:
                        rows.append(
                            {"preset": preset, "res": res, "precision": precision, "mode": mode, "note": reason}
                        )
                        continue
                    try:
                        runner = make_runner(net, device, precision, mode, w, h)
                    except (DeviceError, RuntimeError) as exc:
                        msg = str(exc).splitlines()[0][:120]
                        rows.append({"preset": preset, "res": res, "precision": precision, "mode": mode, "note": msg})
                        continue
                    mem = PeakMemory(device)
                    with mem:
                        runner.fn()
                    runners[mode], mems[mode] = runner, mem
                if not runners:
                    continue
                threads = spec.threads if device.type == "cpu" else [None]
                sync = sync_for(device)
                loads: list[float] = []
                rounds = interleaved(
                    {(m, t): _round_timer(runners[m].fn, t, spec, sync) for m in runners for t in threads},
                    spec.rounds,
                    after_round=every_round(_note_load, loads),
                )
                timings = {variant: Timing() for variant in rounds}
                for variant, parts in rounds.items():
                    for part in parts:
                        timings[variant].extend(part)
                torch.set_num_threads(default_threads)
                elem = DTYPE_BYTES[dtypes[precision]]
                for (mode, nthreads), t in timings.items():
                    bw = bandwidth[nthreads]
                    mem_floor_ms = (act_bpp * elem / 4 * pw * ph + weight_b * elem / 4) / bw * 1e3
                    comp_floor_ms = gflop * 1e9 / peak_flops[(precision, nthreads)] * 1e3
                    floor = max(comp_floor_ms, mem_floor_ms)
                    row = {
                        "preset": preset,
                        "res": res,
                        "precision": precision,
                        "mode": mode,
                        "threads": nthreads if nthreads is not None else "-",
                        "fps": round(t.fps, 2),
                        "p50 ms": round(t.median_ms, 2),
                        "p95 ms": round(t.p95_ms, 2),
                        "cpu ms": round(t.cpu_median_ms, 2),
                        "n": t.n,
                        "first call s": round(runners[mode].first_call_s, 2),
                        "peak MiB": mems[mode].peak_mib,
                        "delta MiB": mems[mode].delta_mib,
                        "GFLOP/frame": round(gflop, 2),
                        "GFLOP/s": round(gflop / (t.median_ms / 1e3), 1),
                        "compute floor ms": round(comp_floor_ms, 3),
                        "memory floor ms": round(mem_floor_ms, 3),
                        "x floor": round(t.median_ms / floor, 1),
                        "load1": round(max(loads), 1),
                        "note": "",
                    }
                    rows.append(row)
                    log(
                        f"  {preset:5s} {res:>9s} {precision} {mode:17s} t{row['threads']} {row['fps']:8.2f} fps"
                        f"  p50 {row['p50 ms']:9.2f} ms  p95 {row['p95 ms']:9.2f} ms  x floor {row['x floor']}"
                        f"  load {row['load1']}"
                    )
                del runners
                gc.collect()
    return {"ceilings": ceilings, "presets": presets_rows, "rows": rows}


def _try_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    try:
        return pick_dtype(device, precision)
    except DeviceError:
        return None


# ----------------------------------------------------------------- profile


def stage_profile(
    preset: str, device: torch.device, precision: str, w: int, h: int, iters: int = 5
) -> list[dict[str, Any]]:
    """Share of the frame time spent in each stage (head, down.i, res.i, up.i, tail),
    timed with forward hooks on the engine's prepared network (channels_last)."""
    torch.manual_seed(0)
    stylizer = Stylizer(TransformNet(PRESETS[preset]), device=device, precision=precision, channels_last=True)
    model: Any = stylizer._model
    x = stylizer.transfer.upload(synthetic_frames(w, h, count=1)[0])
    sync = sync_for(device)
    spent: dict[str, float] = {}
    starts: dict[str, float] = {}
    stages: list[tuple[str, nn.Module]] = [("head", model.head)]
    stages += [(f"down.{i}", m) for i, m in enumerate(model.down)]
    stages += [(f"res.{i}", m) for i, m in enumerate(model.res)]
    stages += [(f"up.{i}", m) for i, m in enumerate(model.up)]
    stages += [("tail", model.tail)]
    handles = []
    for name, mod in stages:

        def pre(_m: nn.Module, _i: Any, name: str = name) -> None:
            sync()
            starts[name] = time.perf_counter()

        def post(_m: nn.Module, _i: Any, _o: Any, name: str = name) -> None:
            sync()
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - starts[name]

        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    stylizer.stylize(x)
    spent.clear()
    total = 0.0
    for _ in range(iters):
        sync()
        t0 = time.perf_counter()
        stylizer.stylize(x)
        sync()
        total += time.perf_counter() - t0
    for hd in handles:
        hd.remove()
    rows = []
    for name, mod in stages:
        convs = [m for m in mod.modules() if isinstance(m, nn.Conv2d)]
        shape = ", ".join(
            f"{c.in_channels}->{c.out_channels} k{c.kernel_size[0]}" + (" dw" if c.groups > 1 else "") for c in convs
        )
        rows.append(
            {
                "stage": name,
                "convs": shape,
                "ms": round(spent[name] / iters * 1e3, 2),
                "share %": round(100 * spent[name] / total, 1),
            }
        )
    other = total - sum(spent.values())
    rows.append(
        {
            "stage": "other (pad, sigmoid, crop, dtype)",
            "ms": round(other / iters * 1e3, 2),
            "share %": round(100 * other / total, 1),
        }
    )
    rows.append({"stage": "total", "ms": round(total / iters * 1e3, 2), "share %": 100.0})
    return rows


def op_profile(
    preset: str, device: torch.device, precision: str, w: int, h: int, top: int = 12
) -> list[dict[str, Any]]:
    """torch.profiler's heaviest aten ops for one frame (self time, averaged over 3)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    stylizer = Stylizer(TransformNet(PRESETS[preset]), device=device, precision=precision, channels_last=True)
    x = stylizer.transfer.upload(synthetic_frames(w, h, count=1)[0])
    stylizer.stylize(x)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(3):
            stylizer.stylize(x)
        sync_for(device)()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)
    total = sum(getattr(e, key, 0) for e in events) or 1
    return [
        {
            "op": e.key,
            "calls/frame": e.count // 3,
            "ms/frame": round(getattr(e, key) / 3 / 1e3, 2),
            "share %": round(100 * getattr(e, key) / total, 1),
        }
        for e in events[:top]
    ]


# --------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--device", default="auto")
    p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    p.add_argument("--resolutions", nargs="+", default=list(RESOLUTIONS), choices=list(RESOLUTIONS))
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"], choices=["fp32", "bf16", "fp16"])
    p.add_argument("--modes", nargs="+", default=list(ALL_MODES), choices=list(ALL_MODES))
    p.add_argument(
        "--quick",
        action="store_true",
        help="CPU: full only at 640x480, compiled only at 640x480, only channels_last above 720p",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the modes of one config")
    p.add_argument("--iters", type=int, default=3, help="samples per mode per round")
    p.add_argument("--max-seconds", type=float, default=4.0, help="timing budget per config and mode")
    p.add_argument("--threads", type=int, nargs="+", default=None, help="CPU thread counts to compare (interleaved)")
    p.add_argument("--profile", nargs="*", default=None, metavar="PRESET", help="add stage/op profiles at 640x480")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--name", default=None, help="result file stem (default model_speed_<device>)")
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    spec = GridSpec(
        presets=args.presets,
        resolutions=args.resolutions,
        precisions=args.precisions,
        modes=args.modes,
        rounds=args.rounds,
        iters_per_round=args.iters,
        max_seconds=args.max_seconds,
        quick=args.quick,
        threads=list(args.threads) if args.threads else [None],
    )
    machine = machine_info(device)
    t0 = time.perf_counter()
    result = run_grid(spec, device)
    sections: list[tuple[str, list[dict[str, Any]], list[str]]] = [
        ("Ceilings measured here", result["ceilings"], ["what", "value", "unit"]),
        ("Presets", result["presets"], list(result["presets"][0])),
        (
            "Model speed",
            result["rows"],
            [
                "preset",
                "res",
                "precision",
                "mode",
                "threads",
                "fps",
                "p50 ms",
                "p95 ms",
                "cpu ms",
                "n",
                "first call s",
                "peak MiB",
                "delta MiB",
                "GFLOP/s",
                "compute floor ms",
                "memory floor ms",
                "x floor",
                "load1",
                "note",
            ],
        ),
    ]
    if args.threads and device.type == "cpu":
        torch.set_num_threads(args.threads[0])
    best_precision = "bf16" if "bf16" in args.precisions and device.type == "cpu" else args.precisions[0]
    for preset in args.profile or []:
        for precision in dict.fromkeys([args.precisions[0], best_precision]):
            if _try_dtype(device, precision) is None:
                continue
            sections.append(
                (
                    f"Stages of {preset}, 640x480 {precision} channels_last, {torch.get_num_threads()} threads",
                    stage_profile(preset, device, precision, 640, 480),
                    ["stage", "convs", "ms", "share %"],
                )
            )
            sections.append(
                (
                    f"Top ops of {preset}, 640x480 {precision} channels_last, {torch.get_num_threads()} threads "
                    "(torch.profiler self time)",
                    op_profile(preset, device, precision, 640, 480),
                    ["op", "calls/frame", "ms/frame", "share %"],
                )
            )
    notes = [
        f"total benchmark wall time {time.perf_counter() - t0:.0f} s",
        "cpu ms = median CPU time of this process per frame (all threads): other processes' load inflates "
        "p50 but hardly cpu ms, so with 1 thread 1000 / cpu ms estimates the fps of an idle core",
        "fps = 1000 / p50; each config timed in interleaved rounds with the other modes of the same "
        "preset x resolution x precision",
        "peak MiB: CPU = process peak RSS during one call (VmHWM reset per config), delta = above the RSS "
        "before the call; CUDA = torch.cuda.max_memory_allocated",
        "compute floor uses the matmul rate of the same dtype; memory floor assumes perfect fusion "
        "(each conv reads input + weights once, writes output once)",
    ]
    cmd = command_line("model_speed", argv)
    name = args.name or f"model_speed_{device.type}"
    _, md_path, text = write_results(
        name, machine, sections, out_dir=args.out, config={"command": cmd, **vars(args)}, notes=notes
    )
    print()
    print(text)
    print(f"wrote {md_path} (+ .json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
