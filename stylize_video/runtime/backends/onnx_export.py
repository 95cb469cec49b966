"""ONNX export of a style network: the graph OpenVINO, ONNX Runtime and TensorRT run.

The exported graph is :meth:`TransformNet.forward_padded`: convolutions only, height
and width dynamic. Contract (also written into the file's ``metadata_props``):

* input ``image``: float32 (1, 3, H, W), RGB in [0, 1]; H and W multiples of
  ``stride`` (4 for ``full``, 8 for ``lite``) and at least ``min_size``. Pad other
  sizes at the bottom/right (reflect) and crop the output back; stylize-video's
  engine does exactly that.
* input ``style`` (multi-style networks only): float32 (num_styles,), the mixing
  weights over the network's styles (one-hot for one style, a convex combination for
  a blend; they should sum to 1). The names of the styles, by row, are in the
  metadata (``styles``), so blends and morphs need no re-export.
* output ``stylized``: float32 (1, 3, H, W), RGB in [0, 1].

Instance normalisation is exported as ONNX ``InstanceNormalization`` (one fused op
in every runtime: OpenVINO ran lite 640x480 in 17 ms with it against 57 ms with our
torch formulation's separate reductions); see :mod:`.openvino` for how its
statistics fare in OpenVINO's bf16 mode.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ... import __version__
from ...errors import CheckpointError, OutputError
from ...models.layers import InstanceNorm
from ...models.transform_net import TransformNet, pad_to_size, padded_size
from . import ExportedGraph, require

log = logging.getLogger(__name__)

#: ONNX opset of exported graphs (17: the first with LayerNormalization; everything
#: here is older, 17 is what current runtimes optimise best).
OPSET = 17
#: Exported output must match PyTorch fp32 within this mean absolute difference.
TOLERANCE = 1.0 / 255.0
INPUT_NAME, OUTPUT_NAME = "image", "stylized"
#: The second input of multi-style graphs: the style weights.
STYLE_INPUT_NAME = "style"
#: Bumped whenever the exported graph changes for the same weights (a cache key part).
GRAPH_VERSION = 2
#: (rows, columns) strides of the sample a sampled norm's statistics come from
#: (see :class:`_SampledInstanceNorm`).
SAMPLE_STRIDES = (3, 5)


class _OnnxInstanceNorm(nn.Module):
    """:class:`InstanceNorm` as ``F.instance_norm`` (ONNX InstanceNormalization).

    A conditional norm normalises without affine, then applies the scale and shift
    mixed from its tables by the ``style`` input (a (1, N) x (N, C) MatMul per layer:
    the graph's weights stay constants, only the mixing weights are an input).
    """

    def __init__(self, norm: InstanceNorm) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps
        self.num_styles = norm.num_styles

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if not self.num_styles:
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        scale, shift = self.affine(style)
        return F.instance_norm(x, eps=self.eps) * scale + shift

    def affine(self, style: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The (1, C, 1, 1) scale and shift (a conditional norm's mixed from its tables)."""
        if not self.num_styles:
            return self.weight.reshape(1, -1, 1, 1), self.bias.reshape(1, -1, 1, 1)
        w = style.reshape(1, -1) if style is not None else F.one_hot(torch.tensor([0]), self.num_styles).float()
        return (w @ self.weight).reshape(1, -1, 1, 1), (w @ self.bias).reshape(1, -1, 1, 1)


class _SampledInstanceNorm(_OnnxInstanceNorm):
    """Instance norm whose statistics come from every ``SAMPLE_STRIDES`` pixel of the plane.

    Only in the graph the OpenVINO backend compiles for bf16 at >= 360p (never in an
    exported file), and only for the full-resolution norms (the head's and the last
    decoder stage's): there OpenVINO's MVN read its plane three times, 2-2.5 ms of a
    lite 640x480 frame's ~15 ms each. A mean and a centred variance over a 1/15 strided
    sample, applied as one fused multiply-add, measured 1.12-1.13x less CPU time for the
    graph (1.10x at 1280x720) and 1.09-1.11x the frame rate end to end (uint8 frames in
    and out; 1.07-1.09x at 1280x720), and moved the output from torch fp32 by 0.13/255
    mean on photos (0.27 -> 0.40/255, worst 0.58). The strides are odd and unequal so that no
    period-2 or period-4 pattern (interlaced lines, 2x2 or 4x4 dot grids, checkerboards)
    aliases to a constant: aligned ``::2``/``::4`` sampling put an interlaced frame
    9/255 off, these strides 0.75/255 (exact MVN 0.6/255).
    """

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        sample = x[..., :: SAMPLE_STRIDES[0], :: SAMPLE_STRIDES[1]]
        mean = sample.mean(dim=(2, 3), keepdim=True)
        var = (sample - mean).square().mean(dim=(2, 3), keepdim=True)  # centred: no cancellation
        weight, bias = self.affine(style)
        scale = weight * torch.rsqrt(var + self.eps)
        return x * scale + (bias - mean * scale)


class _Padded(nn.Module):
    """``net.forward_padded`` on the input minus its per-channel mean: what export traces.

    The head is conv -> instance norm, and instance norm removes any per-channel
    constant, so subtracting the input's mean (and dropping the head conv's bias) leaves
    the output unchanged in exact arithmetic. In a runtime's arithmetic it matters:
    OpenVINO's MVN computes the variance in one pass, which cancels catastrophically
    when a plane's mean dwarfs its spread (a low-contrast frame: levels 200-212 came out
    12/255 from fp64 in fp32, 22/255 in bf16), and bf16 resolves values near 0.8 only
    to 1/255. Centred, the same frame is 0.3/255 (fp32) and 3.0/255 (bf16, a normal
    1080p frame; 3.6 before) at the cost of one mean over three channels.
    """

    def __init__(self, net: TransformNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.forward_padded(x - x.mean(dim=(2, 3), keepdim=True), style)


def _drop_head_bias(net: TransformNet) -> None:
    """Zero the bias of the head's last conv (the norm right after it removes it anyway)."""
    convs = [m for m in net.head.conv.modules() if isinstance(m, nn.Conv2d)]
    if convs and convs[-1].bias is not None:
        with torch.no_grad():
            convs[-1].bias.zero_()  # our own deep copy


def exportable(net: TransformNet, *, sampled_norms: bool = False) -> nn.Module:
    """A fp32 CPU copy of ``net`` ready to trace (``net`` itself is not touched).

    ``sampled_norms``: the full-resolution norms take their statistics from a strided
    sample (:class:`_SampledInstanceNorm`; the OpenVINO backend's bf16 graph only).
    """
    net = copy.deepcopy(net).float().cpu().eval().requires_grad_(False)
    full_resolution = {id(net.head.norm)} | ({id(net.up[-1].norm)} if len(net.up) else set())
    for parent in list(net.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, InstanceNorm):
                sampled = sampled_norms and id(child) in full_resolution
                setattr(parent, child_name, (_SampledInstanceNorm if sampled else _OnnxInstanceNorm)(child))
    _drop_head_bias(net)
    return _Padded(net)


def onnx_bytes(net: TransformNet, opset: int = OPSET, *, sampled_norms: bool = False) -> bytes:
    """Serialize ``net.forward_padded`` to ONNX with dynamic height and width
    (and the ``style`` weights as a second input for a multi-style network).

    ``sampled_norms``: see :func:`exportable` (never for a file written for users)."""
    module = exportable(net, sampled_norms=sampled_norms)
    size = max(net.min_size, 4 * net.stride)
    example: tuple[torch.Tensor, ...] = (torch.rand(1, 3, size, size),)
    names = [INPUT_NAME]
    if net.num_styles:
        example += (torch.full((net.num_styles,), 1.0 / net.num_styles),)
        names.append(STYLE_INPUT_NAME)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo (which needs
        # onnxscript, another dependency) but produces the same plain conv graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            buf,  # type: ignore[arg-type]  # a file object works, the stubs say paths
            dynamo=False,
            opset_version=opset,
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {2: "height", 3: "width"}, OUTPUT_NAME: {2: "height", 3: "width"}},
        )
    return buf.getvalue()


def contract(stride: int, min_size: int, num_styles: int = 0) -> str:
    """The input/output contract in words (stored in the model's metadata)."""
    style = (
        f"input '{STYLE_INPUT_NAME}': float32 ({num_styles},) style mixing weights summing to 1 "
        "(row i is the i-th name in the 'styles' metadata); "
        if num_styles
        else ""
    )
    return (
        f"input '{INPUT_NAME}': float32 (1, 3, H, W) RGB in [0, 1], H and W multiples of {stride} and >= {min_size} "
        "(pad other sizes at the bottom/right with reflection and crop the output); "
        f"{style}output '{OUTPUT_NAME}': float32 (1, 3, H, W) RGB in [0, 1]"
    )


def export_metadata(checkpoint: Any, opset: int = OPSET) -> dict[str, str]:
    """Credits and settings of a :class:`Checkpoint` as ONNX ``metadata_props``."""
    net: TransformNet = checkpoint.model
    meta = checkpoint.meta
    props = {
        "stylize_video.version": __version__,
        "style": meta.name,
        "stride": str(net.stride),
        "min_size": str(net.min_size),
        "contract": contract(net.stride, net.min_size, net.num_styles),
        "arch": json.dumps(net.config.to_dict(), sort_keys=True),
        "opset": str(opset),
    }
    for key in ("preset", "title", "artist", "year", "credit", "created"):
        value = getattr(meta, key, None)
        if value:
            props[key] = str(value)
    if meta.training:
        props["training"] = json.dumps(meta.training, sort_keys=True, default=str)
    if meta.metrics:
        props["metrics"] = json.dumps(meta.metrics, sort_keys=True, default=str)
    if net.num_styles:
        # A multi-style export bakes no style: the graph takes the weights, these name the rows.
        props["num_styles"] = str(net.num_styles)
        props["styles"] = json.dumps(meta.style_names)
        props["style_credits"] = json.dumps(
            [dataclasses.asdict(info) for info in meta.styles], sort_keys=True, default=str
        )
    return props


def _test_frame(h: int, w: int) -> torch.Tensor:
    """A smooth frame with texture: closer to a photo than uniform noise."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, 0.5 + 0.5 * torch.sin(xx * 17 + yy * 11)])
    return (base * 0.8 + 0.2 * torch.rand(3, h, w, generator=g)).clamp(0, 1)[None]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote and how close it came to PyTorch.

    ``styles`` names the rows of a multi-style export (empty for one style).
    """

    path: Path
    style: str
    bytes: int
    mean_abs_diff: float
    max_abs_diff: float
    check_size: tuple[int, int]
    seconds: float
    styles: tuple[str, ...] = ()


def export_onnx(
    style: Any,
    output: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    opset: int = OPSET,
    check_size: tuple[int, int] = (97, 131),
) -> ExportResult:
    """Export a style to an ONNX file, verified against PyTorch fp32.

    Args:
        style: a style name, checkpoint path or :class:`Checkpoint`.
        output: the ``.onnx`` file to write (atomically: a temporary file in the same
            folder is verified, then renamed).
        overwrite: replace an existing file.
        opset: ONNX opset (>= 17).
        check_size: (H, W) of the odd-sized frame the export is verified on.

    Raises:
        OutputError: bad or existing output, or the exported graph's output differs
            from PyTorch by more than 1/255 mean absolute (nothing is written).
        DependencyError: onnx or onnxruntime is missing (``stylize-video[onnx]``).
    """
    from ...models.checkpoint import Checkpoint, load_checkpoint, named_row

    t0 = time.perf_counter()
    path = Path(output)
    if path.suffix.lower() != ".onnx":
        raise OutputError(f"export writes .onnx files, got {str(path)!r}")
    if path.exists() and not overwrite:
        raise OutputError(f"{str(path)!r} exists (use --overwrite to replace it)")
    if path.is_dir():
        raise OutputError(f"{str(path)!r} is a folder")
    if opset < 17:
        raise OutputError(f"opset must be >= 17, got {opset}")
    onnx = require("onnx", "onnx")
    ort = require("onnxruntime", "onnxruntime")
    checkpoint = style if isinstance(style, Checkpoint) else load_checkpoint(style)
    if isinstance(style, str | os.PathLike) and named_row(style) is not None:
        # A style asked for by its name is that style: a one-input graph like a
        # single-style file's. The network's file or name exports all its styles.
        checkpoint = checkpoint.one_style()
    net = checkpoint.model  # a loaded checkpoint's model is CPU fp32 in eval mode; export copies it

    model = onnx.load_from_string(onnx_bytes(net, opset))
    model.producer_name = "stylize-video"
    model.producer_version = __version__
    model.doc_string = f"stylize-video style {checkpoint.meta.name}: " + contract(
        net.stride, net.min_size, net.num_styles
    )
    for key, value in export_metadata(checkpoint, opset).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    data = model.SerializeToString()

    # Verify what will be written: ONNX Runtime on the padded odd-sized frame,
    # cropped, against the PyTorch module's own (pad-inside) forward.
    x = _test_frame(*check_size)
    feeds: dict[str, np.ndarray] = {}
    style = None
    if net.num_styles:
        # An uneven blend of every style: checks each row and the mixing at once.
        style = torch.arange(1, net.num_styles + 1, dtype=torch.float32)
        style /= style.sum()
        feeds[STYLE_INPUT_NAME] = style.numpy()
    with torch.inference_mode():
        reference = net(x, style).numpy()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    th, tw = padded_size(check_size[0], check_size[1], net.stride, net.min_size)
    feeds[INPUT_NAME] = pad_to_size(x, th, tw).numpy()
    got = session.run(None, feeds)[0][..., : check_size[0], : check_size[1]]
    diff = np.abs(got - reference)
    mean_diff, max_diff = float(diff.mean()), float(diff.max())
    if not mean_diff <= TOLERANCE:
        raise OutputError(
            f"exported {checkpoint.meta.name} differs from PyTorch by {mean_diff * 255:.2f}/255 mean absolute "
            f"(limit 1/255) on a {check_size[1]}x{check_size[0]} frame; nothing written"
        )

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s (mean abs diff %.2e)", checkpoint.meta.name, path, mean_diff)
    return ExportResult(
        path=path,
        style=checkpoint.meta.name,
        styles=tuple(checkpoint.meta.style_names) if checkpoint.meta.styles else (),
        bytes=len(data),
        mean_abs_diff=mean_diff,
        max_abs_diff=max_diff,
        check_size=check_size,
        seconds=time.perf_counter() - t0,
    )


def read_exported(path: str | os.PathLike[str]) -> ExportedGraph:
    """Read an exported graph's contract (stride, min size) and metadata.

    Raises:
        CheckpointError: not a stylize-video export (no stride in its metadata).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no such ONNX file: {str(p)!r}")
    props: dict[str, str]
    try:
        import onnx

        model = onnx.load(str(p), load_external_data=False)
        props = {e.key: e.value for e in model.metadata_props}
    except ImportError:
        ort = require("onnxruntime", "onnxruntime")
        session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        props = dict(session.get_modelmeta().custom_metadata_map)
    except Exception as exc:  # onnx raises its own DecodeError/ValidationError types
        raise CheckpointError(f"{str(p)!r} is not a readable ONNX file: {exc}") from None
    try:
        stride, min_size = int(props["stride"]), int(props["min_size"])
    except (KeyError, ValueError):
        raise CheckpointError(
            f"{str(p)!r} has no stylize-video metadata (stride, min_size): export it with `stylize-video export`"
        ) from None
    return ExportedGraph(path=p, stride=stride, min_size=min_size, metadata=props)


def network_key(net: TransformNet, opset: int = OPSET, *, sampled_norms: bool = False) -> str:
    """A content hash of a network's architecture and weights (cache key of its graph)."""
    h = hashlib.sha256(json.dumps(net.config.to_dict(), sort_keys=True).encode())
    # The exporter's own version too: a changed graph must not be served from the cache.
    h.update(f"opset={opset};torch={torch.__version__};graph={GRAPH_VERSION}".encode())
    if sampled_norms:
        h.update(f";sampled={SAMPLE_STRIDES}".encode())
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def graph_bytes(network: Any, cache: Path | None = None, *, sampled_norms: bool = False) -> bytes:
    """ONNX bytes of a :class:`TransformNet` (exported, or read from ``cache``) or an
    :class:`ExportedGraph` (read from its file, as it is: ``sampled_norms`` applies to
    networks only).

    Exporting lite takes ~0.7 s on the 2-core CPU; the cached file is read in
    milliseconds, so a second run of the same style starts faster.
    """
    if isinstance(network, ExportedGraph):
        return network.path.read_bytes()
    if not isinstance(network, TransformNet):
        raise TypeError(f"expected a TransformNet or ExportedGraph, got {type(network).__name__}")
    if cache is None:
        return onnx_bytes(network, sampled_norms=sampled_norms)
    path = cache / "onnx" / f"{network_key(network, sampled_norms=sampled_norms)}.onnx"
    try:
        return path.read_bytes()
    except OSError:
        pass
    data = onnx_bytes(network, sampled_norms=sampled_norms)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home: run uncached
        log.info("cannot cache the ONNX graph in %s: %s", path.parent, exc)
    return data
