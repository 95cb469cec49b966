"""The style set: the networks a :class:`~stylize_video.runtime.stylizer.Stylizer` holds,
the style names their rows go by, and the mixture of them the next frame uses.

Kept apart from the engine because it is bookkeeping, not inference: resolving a style
spec to loaded networks (merging multi-style networks that share their weights, so
their styles blend for free), and morphing the weights per network from one style or
blend to the next. It never runs a network or builds a backend; the engine asks it for
each frame's ``(network key, share, weights)`` parts and prepares the backends itself.
Time is given to it (``now``); ``None`` means "no clock": a morph counts as finished.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..models.checkpoint import Checkpoint, base_fingerprint, load_checkpoint
from ..models.transform_net import TransformNet
from .backends import ExportedGraph
from .style_spec import StyleSpec, format_style_spec, parse_style_spec

log = logging.getLogger(__name__)

StyleLike = Checkpoint | TransformNet | str | os.PathLike[str]

#: One network's part of a frame: (network key, its share of the output, its weights summing to 1).
Parts = list[tuple[str, float, torch.Tensor]]


@dataclass
class _Net:
    """One network the engine holds, and the style name of each of its rows."""

    key: str
    network: TransformNet | ExportedGraph
    names: list[str]

    @property
    def rows(self) -> int:
        return len(self.names)

    @property
    def conditional(self) -> bool:
        """Takes style weights (a multi-style network or graph)."""
        return bool(getattr(self.network, "num_styles", 0))


class StyleSet:
    """Loaded style networks by name, and the current (possibly morphing) mixture of them.

    Args:
        on_change: called with a network's key when that network was replaced (rows
            merged in from another file): a backend prepared for it is stale.

    Attributes:
        nets: network key -> the network and its row names.
        names: style name -> (network key, row).
        spec: the current target style as parsed (name, weight) pairs.
        style_name: the current target as a normalised spec (``a=0.7+b=0.3``).
        main_key: the network carrying most of the current target.
    """

    def __init__(self, on_change: Callable[[str], None] | None = None) -> None:
        self.nets: dict[str, _Net] = {}
        self.names: dict[str, tuple[str, int]] = {}
        self._origins: dict[str, str] = {}  # checkpoint name -> the file it came from
        self._on_change = on_change
        self._warned_multi = False
        # The weights per network: where a morph started, where it goes, and when.
        self._start: dict[str, torch.Tensor] = {}
        self._target: dict[str, torch.Tensor] = {}
        self._target_parts: Parts = []
        self._morph_t0 = 0.0
        self._morph_seconds = 0.0
        self.spec: StyleSpec = ()
        self.style_name = ""
        self.main_key = ""

    def keys(self, spec: StyleSpec) -> list[str]:
        """The keys of the networks ``spec``'s (registered) names live in, in spec order."""
        return list(dict.fromkeys(self.names[name][0] for name, _ in spec))

    def morph_to(self, spec: StyleSpec, seconds: float, clock: Callable[[], float] | None) -> None:
        """Make ``spec`` (registered names) the target, morphing over ``seconds`` from ``clock()``.

        The morph starts from the current mixture (no jump mid-morph); the first style,
        ``seconds == 0`` and no clock are cuts (the clock is read only for a morph).
        """
        target = self._weights_of(spec)
        first = not self._target
        if first or seconds == 0 or clock is None:
            self._start, self._morph_t0, self._morph_seconds = target, 0.0, 0.0
        else:
            now = clock()
            self._start = self._mixture(now)
            self._morph_t0, self._morph_seconds = now, seconds
        self._target = target
        self._target_parts = _split(target)
        self.spec = spec
        self.style_name = format_style_spec(spec)
        self.main_key = max(target, key=lambda k: float(target[k].sum()))
        if len(target) > 1 and not self._warned_multi:
            self._warned_multi = True
            log.info(
                "blending styles of %d different networks runs each of them per frame (%.0fx the cost); "
                "styles of one multi-style network blend for free",
                len(target),
                len(target),
            )

    def morphing(self, now: float | None) -> bool:
        """True while a morph is still under way at ``now`` (never without a clock)."""
        return self._morph_seconds > 0 and now is not None and now < self._morph_t0 + self._morph_seconds

    def blend(self, now: float | None) -> dict[str, float]:
        """The mixture of style names at ``now`` (weights summing to 1)."""
        out: dict[str, float] = {}
        for key, weights in self._mixture(now).items():
            names = self.nets[key].names
            for name, w in zip(names, weights.tolist(), strict=True):
                if w > 0:
                    out[name] = out.get(name, 0.0) + w
        return out

    def parts(self, now: float | None) -> Parts:
        """(network key, its share of the output, its own weights summing to 1) for a frame at ``now``."""
        if self._morph_seconds > 0:
            if now is not None and now < self._morph_t0 + self._morph_seconds:
                return _split(self._mixture(now))
            self._morph_seconds = 0.0  # done: later frames take the fast path
            self._start = self._target
        return self._target_parts  # the same tensors every frame: backends cache on them

    def _mixture(self, now: float | None) -> dict[str, torch.Tensor]:
        """Weights per network key at time ``now`` (mass across networks sums to 1)."""
        if self._morph_seconds <= 0 or now is None:
            return self._target
        t = (now - self._morph_t0) / self._morph_seconds
        if t >= 1.0:
            return self._target
        t = max(0.0, t)
        s = t * t * (3.0 - 2.0 * t)  # smoothstep: monotone, eases in and out
        out: dict[str, torch.Tensor] = {}
        for key in self._start.keys() | self._target.keys():
            n = self.nets[key].rows
            a = self._start.get(key, torch.zeros(n))
            b = self._target.get(key, torch.zeros(n))
            w = torch.lerp(a, b, s)
            if float(w.sum()) > 0:
                out[key] = w
        return out

    def _weights_of(self, spec: StyleSpec) -> dict[str, torch.Tensor]:
        weights: dict[str, torch.Tensor] = {}
        for name, w in spec:
            key, row = self.names[name]
            vec = weights.setdefault(key, torch.zeros(self.nets[key].rows))
            vec[row] += w
        return weights

    def resolve(self, style: StyleLike) -> StyleSpec:
        """Load whatever ``style`` names and return it as a spec of registered names.

        Raises:
            StyleSpecError / CheckpointError: a bad spec or an unknown or unusable style.
        """
        if isinstance(style, TransformNet):
            return ((self._register(style, None, None, 0), 1.0),)
        if isinstance(style, Checkpoint):
            return ((self._register_checkpoint(style), 1.0),)
        text = os.fspath(style)
        if text in self.names:
            return ((text, 1.0),)
        spec = parse_style_spec(text)
        resolved = []
        for name, weight in spec:
            if name not in self.names:
                if Path(name).suffix.lower() == ".onnx":
                    from .backends.onnx_export import read_exported

                    graph = read_exported(name)
                    self._register(graph, name, graph.style_names, 0)
                else:
                    ck = load_checkpoint(name)
                    got = self._register_checkpoint(ck, as_name=name)
                    if got != name:
                        self.names[name] = self.names[got]
            resolved.append((name, weight))
        return tuple(resolved)

    def _register_checkpoint(self, ck: Checkpoint, as_name: str | None = None) -> str:
        """Register a checkpoint's network; return the name of its chosen style.

        A single-style network goes by ``as_name`` (what the user typed) when given,
        else by its metadata's name.
        """
        names = ck.style_names
        origin = str(ck.path.resolve()) if ck.path is not None else f"id-{id(ck)}"
        if not ck.meta.styles:
            if as_name is not None:
                return self._register(ck.model, as_name, [as_name], 0)
            name = ck.meta.name or str(ck.path)
            if self._origins.setdefault(name, origin) != origin:
                # Another network already goes by this name (names default to the file
                # stem: v1/my-style vs v2/my-style): tell them apart by their path.
                name = str(ck.path) if ck.path is not None else f"{name}#{id(ck)}"
                self._origins.setdefault(name, origin)
            return self._register(ck.model, name, [name], 0)
        return self._register(ck.model, None, names, ck.style_index)

    def _register(
        self, network: TransformNet | ExportedGraph, key: str | None, names: list[str] | None, index: int
    ) -> str:
        """Register a network under ``key`` with row ``names``; return the name of row ``index``.

        A multi-style network whose shared weights equal an already registered one's
        (the same gallery file reached through two names, or a learned style vector
        attached to it) is merged into it: new rows are appended, so every style of
        that network keeps blending for free.
        """
        if isinstance(network, TransformNet) and network.num_styles:
            fingerprint = "net-" + base_fingerprint(network)
            names = names or [f"{fingerprint[:12]}-{i}" for i in range(network.num_styles)]
            existing = self.nets.get(fingerprint)
            if existing is None:
                self.nets[fingerprint] = _Net(fingerprint, network, list(names))
            else:
                self._merge(existing, network, names)
            net = self.nets[fingerprint]
            chosen = names[index]
            for name in names:
                row = (fingerprint, net.names.index(name))
                if self.names.setdefault(name, row) != row:
                    # Another network already has a style of this name: this one's row goes
                    # by a qualified name, never silently by the other network's style.
                    qualified = f"{name}#{fingerprint[4:12]}"
                    self.names[qualified] = row
                    net.names[row[1]] = qualified
                    chosen = qualified if name == names[index] else chosen
            return chosen
        if isinstance(network, ExportedGraph) and network.num_styles:
            key = key or str(network.path)
            graph_names = names or [f"{key}#{i}" for i in range(network.num_styles)]
            if key not in self.nets:
                self.nets[key] = _Net(key, network, list(graph_names))
                for i, name in enumerate(graph_names):
                    self.names.setdefault(name, (key, i))
                self.names.setdefault(key, (key, 0))
            return key
        key = key or f"model-{id(network)}"
        if key not in self.nets:
            self.nets[key] = _Net(key, network, [key])
            self.names[key] = (key, 0)
        return key

    def _merge(self, net: _Net, other: TransformNet, names: list[str]) -> None:
        """Append the rows of ``other`` that ``net`` lacks (by name)."""
        assert isinstance(net.network, TransformNet)
        new = [(i, n) for i, n in enumerate(names) if n not in net.names]
        if not new:
            return
        grown = copy.deepcopy(net.network)  # the caller's module is never changed in place
        for i, name in new:
            row = grown.add_style()
            grown.set_style_vector(row, other.get_style_vector(i))
            net.names.append(name)
        net.network = grown.eval().requires_grad_(False)
        # The tables changed shape: the weights now and to come need the new rows.
        pad = len(net.names)
        for table in (self._start, self._target):
            if net.key in table:
                table[net.key] = F.pad(table[net.key], (0, pad - table[net.key].numel()))
        self._target_parts = _split(self._target)
        if self._on_change is not None:
            self._on_change(net.key)


def _split(mixture: dict[str, torch.Tensor]) -> Parts:
    """Per network: its share of the output and its weights normalised to sum to 1."""
    parts = []
    for key, weights in mixture.items():
        mass = float(weights.sum())
        if mass > 1e-6:
            parts.append((key, mass, weights / mass))
    total = sum(m for _, m, _ in parts)
    return [(k, m / total, w) for k, m, w in parts]
