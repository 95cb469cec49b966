"""The feed-forward style network (Johnson et al. 2016), with the fixes since.

* reflection padding everywhere (no dark borders from zero padding);
* instance normalisation (Ulyanov et al. 2016), statistics always in fp32 because
  fp16 variance over a 1080p plane overflows/underflows and gives NaN or black frames;
* nearest-neighbour upsampling followed by a convolution instead of transposed
  convolutions, which paint checkerboards (Odena et al. 2016);
* a bounded output (sigmoid to [0, 1]).

The module is pure: no device choice, no file access. ``forward`` accepts any frame
size by padding to its stride multiple and cropping back; ``forward_padded`` is the
pure convolutional graph that inference backends run and ONNX export traces (the
engine, :class:`~stylize_video.runtime.stylizer.Stylizer`, pads and crops around it).

The layers (:class:`~.layers.InstanceNorm`, :class:`~.layers.ConvNormAct`,
:class:`~.layers.ResidualBlock`) are in :mod:`.layers`; this module is the network:
its architecture (:class:`NetConfig`, the presets), :class:`TransformNet` and the
padding rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

# The layers live in .layers (re-exported: code and tests import InstanceNorm from here).
from .layers import BlockKind, ConvNormAct, InstanceNorm, ResidualBlock

OutputKind = Literal["sigmoid", "linear255"]


@dataclass(frozen=True)
class NetConfig:
    """Architecture hyper-parameters of a :class:`TransformNet`.

    Attributes:
        channels: width at each scale; ``channels[0]`` is the full-resolution width
            and each further entry adds one stride-2 downsampling stage.
        res_blocks: number of residual blocks at the lowest resolution.
        res_kind: ``"standard"`` (two 3x3 convs) or ``"separable"`` (depthwise 3x3 +
            pointwise 1x1, about 8x cheaper at 128 channels).
        up_kind: kind of the decoder's 3x3 convolutions (same choices).
        head_kernel: kernel size of the first (full-resolution) convolution.
        tail_kernel: kernel size of the last convolution (to RGB).
        output: ``"sigmoid"`` (bounded, used by everything we train) or
            ``"linear255"`` (clamp of a 0..255 linear output: the layout of
            pytorch/examples ``fast_neural_style`` checkpoints).
        num_styles: 0 for a single-style network (one affine instance norm per layer:
            every checkpoint before the style space); N >= 1 for conditional instance
            norm (Dumoulin et al. 2017): each norm's scale and shift are (N, C) tables,
            one row per style, and a forward pass mixes rows by a weight vector.
    """

    channels: tuple[int, ...] = (32, 64, 128)
    res_blocks: int = 5
    res_kind: BlockKind = "standard"
    up_kind: BlockKind = "standard"
    head_kernel: int = 9
    tail_kernel: int = 9
    output: OutputKind = "sigmoid"
    num_styles: int = 0

    def __post_init__(self) -> None:
        # Checked before any layer is built: the values may come from a file's metadata,
        # where a string, a float or a huge count must be a one-line error, not a traceback
        # or gigabytes of allocation.
        channels = self.channels
        if isinstance(channels, (str, bytes)) or not isinstance(channels, (tuple, list)):
            raise ValueError(f"channels must be a list of positive ints, got {channels!r:.80}")
        if not 1 <= len(channels) <= MAX_STAGES:
            raise ValueError(f"channels must have 1..{MAX_STAGES} entries, got {len(channels)}")
        for c in channels:
            if not _is_int(c) or not 1 <= c <= MAX_CHANNELS:
                raise ValueError(f"channels must be ints within 1..{MAX_CHANNELS}, got {c!r:.80}")
        object.__setattr__(self, "channels", tuple(int(c) for c in channels))
        if not _is_int(self.res_blocks) or not 0 <= self.res_blocks <= MAX_RES_BLOCKS:
            raise ValueError(f"res_blocks must be an int within 0..{MAX_RES_BLOCKS}, got {self.res_blocks!r:.80}")
        object.__setattr__(self, "res_blocks", int(self.res_blocks))
        for name in ("res_kind", "up_kind"):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in ("standard", "separable"):
                raise ValueError(f"{name} must be 'standard' or 'separable', got {value!r:.80}")
        for name in ("head_kernel", "tail_kernel"):
            k = getattr(self, name)
            if not _is_int(k) or not 1 <= k <= MAX_KERNEL or k % 2 == 0:
                raise ValueError(f"{name} must be an odd int within 1..{MAX_KERNEL}, got {k!r:.80}")
            object.__setattr__(self, name, int(k))
        if not isinstance(self.output, str) or self.output not in ("sigmoid", "linear255"):
            raise ValueError(f"output must be 'sigmoid' or 'linear255', got {self.output!r:.80}")
        if not _is_int(self.num_styles) or not 0 <= self.num_styles <= MAX_STYLES:
            raise ValueError(f"num_styles must be an int within 0..{MAX_STYLES}, got {self.num_styles!r:.80}")
        if self.num_parameters() > MAX_PARAMETERS:
            raise ValueError(
                f"architecture has {self.num_parameters():,} parameters, more than the {MAX_PARAMETERS:,} allowed"
            )

    def num_parameters(self) -> int:
        """Number of weights a :class:`TransformNet` of this architecture has, computed without building it."""
        ch = self.channels

        def conv(cin: int, cout: int, k: int, kind: str = "standard") -> int:
            if kind == "separable" and k > 1:
                return cin * k * k + cin * cout + cout  # depthwise (no bias) + pointwise
            return cout * cin * k * k + cout

        rows = max(1, self.num_styles)

        def norm(c: int) -> int:
            return 2 * c * rows

        total = conv(3, ch[0], self.head_kernel) + norm(ch[0])
        total += sum(conv(ch[i], ch[i + 1], 3) + norm(ch[i + 1]) for i in range(len(ch) - 1))
        total += self.res_blocks * 2 * (conv(ch[-1], ch[-1], 3, self.res_kind) + norm(ch[-1]))
        total += sum(conv(ch[i], ch[i - 1], 3, self.up_kind) + norm(ch[i - 1]) for i in range(len(ch) - 1, 0, -1))
        return total + conv(ch[0], 3, self.tail_kernel)

    @property
    def stride(self) -> int:
        """Total downsampling factor; inputs are padded to a multiple of it."""
        return 2 ** (len(self.channels) - 1)

    @property
    def style_channels(self) -> int:
        """Numbers per style: the scale and shift of every instance norm (C each)."""
        ch = self.channels
        total = ch[0] + sum(ch[1:]) + 2 * self.res_blocks * ch[-1] + sum(ch[:-1])
        return 2 * total

    def single(self) -> NetConfig:
        """The same architecture with ``num_styles=0`` (what conv weights are shared with)."""
        return dataclasses.replace(self, num_styles=0)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        if not self.num_styles:
            # Single-style metadata stays byte-identical to files written before the style space.
            del d["num_styles"]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetConfig:
        """Build from :meth:`to_dict` output; any wrong field, type or size is a ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"architecture must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown architecture field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
        return cls(**data)


def _is_int(value: object) -> bool:
    """A real integer: not a bool, float or string that would convert to one."""
    return isinstance(value, int) and not isinstance(value, bool)


#: Bounds on architectures read from files: far above anything trained here (``full``
#: has 1.7 M parameters, 128 channels, 5 blocks), far below what would exhaust memory.
MAX_CHANNELS = 1024
MAX_STAGES = 6
MAX_RES_BLOCKS = 64
MAX_KERNEL = 15
MAX_PARAMETERS = 50_000_000
#: Most styles one conditional network holds (``full``: 3,200 numbers per style).
MAX_STYLES = 256


#: Named architectures. ``full`` is the paper's network (308 kFLOPs/pixel).
#: ``lite`` was chosen by measurement on a 2-core Xeon (640x480, fp32,
#: channels_last; 2026-11-28): a third downsampling stage, 8/16/32/64 channels,
#: separable residual and decoder convs and 3x3 head/tail: 5.0 kFLOPs/pixel,
#: ~20 fps against 1.4 fps for ``full``. Wider variants (16/32/64/64 at 15 kFLOPs,
#: 8/16/48/96 at 8.6 kFLOPs) measured 8.6 and 9.4 fps: the full- and half-resolution
#: layers dominate, so width is spent only at 1/8 resolution.
PRESETS: dict[str, NetConfig] = {
    "full": NetConfig(),
    "lite": NetConfig(
        channels=(8, 16, 32, 64),
        res_blocks=4,
        res_kind="separable",
        up_kind="separable",
        head_kernel=3,
        tail_kernel=3,
    ),
}


def preset(name: str) -> NetConfig:
    """Return the architecture of a named preset (``full`` or ``lite``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None


class TransformNet(nn.Module):
    """Image transformation network that paints one style, or a space of styles, in a single pass.

    With ``config.num_styles == 0`` it is the classic single-style network. With
    ``N >= 1`` every instance norm is conditional: ``style`` weights pick a style or a
    convex blend of styles (the mixture is computed once per call, so its cost does not
    depend on N).

    Shape: (B, 3, H, W) RGB float in [0, 1] -> (B, 3, H, W) RGB float in [0, 1],
    for any H, W >= 1 (padded internally to the stride multiple, cropped back).
    """

    def __init__(self, config: NetConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetConfig()
        ch, n = self.config.channels, self.config.num_styles
        self.head = ConvNormAct(3, ch[0], self.config.head_kernel, num_styles=n)
        self.down = nn.ModuleList(ConvNormAct(ch[i], ch[i + 1], 3, stride=2, num_styles=n) for i in range(len(ch) - 1))
        self.res = nn.Sequential(
            *(ResidualBlock(ch[-1], self.config.res_kind, num_styles=n) for _ in range(self.config.res_blocks))
        )
        self.up = nn.ModuleList(
            ConvNormAct(ch[i], ch[i - 1], 3, upsample=True, kind=self.config.up_kind, num_styles=n)
            for i in range(len(ch) - 1, 0, -1)
        )
        self.tail = nn.Conv2d(
            ch[0], 3, self.config.tail_kernel, padding=self.config.tail_kernel // 2, padding_mode="reflect"
        )

    @property
    def stride(self) -> int:
        return self.config.stride

    @property
    def num_styles(self) -> int:
        """Rows of the style tables (0: a single-style network)."""
        return self.config.num_styles

    @property
    def min_size(self) -> int:
        """Smallest height/width :meth:`forward_padded` accepts (see :func:`min_input_size`)."""
        return min_input_size(self.config)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        th, tw = padded_size(h, w, self.stride, self.min_size)
        return self.forward_padded(pad_to_size(x, th, tw), style)[..., :h, :w]

    def forward_padded(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """The network proper: convolutions only, no size arithmetic.

        This is what inference backends run and what ONNX export traces, so the
        exported graph keeps height and width dynamic; the engine pads and crops.

        Args:
            x: (B, 3, H, W) float RGB in [0, 1], H and W multiples of :attr:`stride`
                and at least :attr:`min_size`.
            style: mixing weights over the styles, (num_styles,) for the whole batch
                or (B, num_styles) per image; None = style 0. Must be None for a
                single-style network. Weights are used as given (normalise blends
                to sum 1: see :func:`normalize_weights`).

        Shape: (B, 3, H, W) -> same shape.
        """
        if style is not None:
            style = self._check_style(style, x.shape[0])
        y = self.head(x, style)
        for stage in self.down:
            y = stage(y, style)
        for block in self.res:
            y = block(y, style)
        for stage in self.up:
            y = stage(y, style)
        y = self.tail(y)
        if self.config.output == "sigmoid":
            return torch.sigmoid(y)
        return (y * (1.0 / 255.0)).clamp(0.0, 1.0)

    def _check_style(self, style: torch.Tensor, batch: int) -> torch.Tensor:
        n = self.num_styles
        if not n:
            raise ValueError("this network has a single style: pass style=None")
        if style.dim() == 1 and style.shape[0] == n:
            return style
        if style.dim() == 2 and style.shape[1] == n and style.shape[0] in (1, batch):
            return style
        raise ValueError(f"style weights must have shape ({n},) or ({batch}, {n}), got {tuple(style.shape)}")

    # ------------------------------------------------------------ style space
    def norms(self) -> list[tuple[str, InstanceNorm]]:
        """Every instance norm with its qualified name (``head.norm``, ``res.0.norm1`` ...)."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, InstanceNorm)]

    def style_params(self) -> list[nn.Parameter]:
        """Every norm's scale and shift table: what learning a style trains, the convs frozen."""
        params: list[nn.Parameter] = []
        for _, norm in self.norms():
            params += [norm.weight, norm.bias]
        return params

    def _require_styles(self) -> None:
        if not self.num_styles:
            raise ValueError("a single-style network has no style tables (build one with TransformNet.from_single)")

    def _check_index(self, index: int) -> int:
        self._require_styles()
        if not isinstance(index, int) or not -self.num_styles <= index < self.num_styles:
            raise IndexError(f"style index {index!r} out of range for {self.num_styles} style(s)")
        return index % self.num_styles

    def get_style_vector(self, index: int) -> dict[str, torch.Tensor]:
        """Style ``index``'s rows, keyed like the state dict (``head.norm.weight`` ...), each (C,), detached copies."""
        i = self._check_index(index)
        out: dict[str, torch.Tensor] = {}
        for name, norm in self.norms():
            out[f"{name}.weight"] = norm.weight.detach()[i].clone()
            out[f"{name}.bias"] = norm.bias.detach()[i].clone()
        return out

    def style_vector_shapes(self) -> dict[str, tuple[int, ...]]:
        """Keys and shapes of a style vector of this architecture."""
        shapes: dict[str, tuple[int, ...]] = {}
        for name, norm in self.norms():
            c = norm.weight.shape[-1]
            shapes[f"{name}.weight"] = shapes[f"{name}.bias"] = (c,)
        return shapes

    def set_style_vector(self, index: int, vector: dict[str, torch.Tensor]) -> None:
        """Overwrite style ``index``'s rows with ``vector`` (as :meth:`get_style_vector` returns).

        Raises:
            ValueError: keys or shapes do not match this architecture.
        """
        i = self._check_index(index)
        expected = self.style_vector_shapes()
        if set(vector) != set(expected):
            missing = sorted(set(expected) - set(vector))
            extra = sorted(set(vector) - set(expected))
            raise ValueError(f"style vector does not fit this network (missing {missing[:2]}, unexpected {extra[:2]})")
        for key, value in vector.items():
            if tuple(value.shape) != expected[key]:
                raise ValueError(f"style vector {key} has shape {tuple(value.shape)}, expected {expected[key]}")
        with torch.no_grad():
            for name, norm in self.norms():
                norm.weight[i].copy_(vector[f"{name}.weight"])
                norm.bias[i].copy_(vector[f"{name}.bias"])

    def add_style(self, init: int | None = None) -> int:
        """Append a style row to every table and return its index.

        The row starts as a copy of style ``init``, or the mean of all rows (None).
        The tables are replaced by new, larger parameters: rebuild optimizers after.
        """
        self._require_styles()
        if init is not None:
            init = self._check_index(init)
        if self.num_styles >= MAX_STYLES:
            raise ValueError(f"a network holds at most {MAX_STYLES} styles")
        with torch.no_grad():
            for _, norm in self.norms():
                for attr in ("weight", "bias"):
                    table: nn.Parameter = getattr(norm, attr)
                    row = table[init] if init is not None else table.mean(dim=0)
                    grown = nn.Parameter(torch.cat([table, row[None]]), requires_grad=table.requires_grad)
                    setattr(norm, attr, grown)
                norm.num_styles += 1
        self.config = dataclasses.replace(self.config, num_styles=self.num_styles + 1)
        return self.num_styles - 1

    @classmethod
    def from_single(cls, nets: Sequence[TransformNet]) -> TransformNet:
        """One conditional network holding the styles of ``nets`` (same architecture).

        Convolution weights come from ``nets[0]``; each single-style net contributes
        its norms' affine as one row (a multi-style net contributes all its rows), in
        order. With one net the result computes exactly what that net computes: the
        starting point of distilling several networks into one.

        Raises:
            ValueError: no nets, or architectures that differ (besides ``num_styles``).
        """
        if not nets:
            raise ValueError("from_single needs at least one network")
        base = nets[0].config.single()
        for i, net in enumerate(nets):
            if net.config.single() != base:
                raise ValueError(f"network {i} has another architecture ({net.config.single()} != {base})")
        rows = sum(max(1, net.num_styles) for net in nets)
        if rows > MAX_STYLES:
            raise ValueError(f"{rows} styles: a network holds at most {MAX_STYLES}")
        first = nets[0]
        param = next(first.parameters())
        with torch.device(param.device):
            out = cls(dataclasses.replace(base, num_styles=rows)).to(param.dtype)
        norm_names = {name for name, _ in out.norms()}
        # Everything but the norms' tables (which change shape) comes from the first net.
        state = {k: v for k, v in first.state_dict().items() if k.rpartition(".")[0] not in norm_names}
        out.load_state_dict(state, strict=False)
        with torch.no_grad():
            for name, norm in out.norms():
                for attr in ("weight", "bias"):
                    tables = []
                    for net in nets:
                        t = net.get_parameter(f"{name}.{attr}").detach()
                        tables.append(t[None] if t.dim() == 1 else t)
                    getattr(norm, attr).copy_(torch.cat(tables))
        return out.train(first.training)


def normalize_weights(weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Mixing weights as a float32 vector summing to 1.

    Raises:
        ValueError: a negative or non-finite weight, or weights summing to 0.
    """
    w = torch.as_tensor(weights, dtype=torch.float32).flatten()
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"style weights must be finite and >= 0, got {w.tolist()}")
    total = float(w.sum())
    if total <= 0:
        raise ValueError(f"style weights sum to 0: {w.tolist()}")
    return w / total


def min_input_size(config: NetConfig) -> int:
    """Smallest padded height/width a network of this architecture can run.

    Every reflection pad needs pad < size: the k-kernel convs at full resolution
    need size > k // 2, the 3x3 convs on the smallest map need it >= 2.
    """
    return max(2 * config.stride, config.head_kernel // 2 + 1, config.tail_kernel // 2 + 1)


def padded_size(h: int, w: int, stride: int, min_size: int = 1) -> tuple[int, int]:
    """The size a (h, w) frame is padded to: stride multiples, at least ``min_size``."""
    floor = -(-min_size // stride) * stride
    return max(-(-h // stride) * stride, floor), max(-(-w // stride) * stride, floor)


def pad_to_size(x: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """Pad (N, C, h, w) at the bottom/right to (N, C, th, tw); ``x`` itself if it fits.

    Reflects where possible (a seamless border); replicates for tiny inputs, where a
    reflection would need more pixels than exist.
    """
    h, w = x.shape[-2:]
    if (th, tw) == (h, w):
        return x
    mode = "reflect" if th - h < h and tw - w < w else "replicate"
    return F.pad(x, (0, tw - w, 0, th - h), mode=mode)


def count_flops_per_pixel(config: NetConfig) -> float:
    """Multiply-adds x 2 per input pixel of the convolutions (norms/activations excluded).

    Exact for sizes divisible by the stride; used to compare presets and to compute
    the compute floor in benchmarks.
    """
    net = TransformNet(config)
    macs = 0.0

    def visit(module: nn.Module, scale: float) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            out_scale = scale / (module.stride[0] * module.stride[1])
            kh, kw = module.kernel_size
            macs += out_scale * module.out_channels * (module.in_channels // module.groups) * kh * kw

    for m in net.head.modules():
        visit(m, 1.0)
    scale = 1.0
    for stage in net.down:
        for m in stage.modules():
            visit(m, scale)
        scale /= 4.0
    for m in net.res.modules():
        visit(m, scale)
    for stage in net.up:
        scale *= 4.0
        for m in stage.modules():
            visit(m, scale)
    visit(net.tail, 1.0)
    return 2.0 * macs
