"""What a checkpoint says about itself: styles, credits, training settings, scores.

The metadata types of :mod:`.checkpoint` (kept apart so the file readers in
:mod:`.checkpoint_files` and the lookup and loading code can share them without a cycle).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..text import printable
from .layers import InstanceNorm
from .transform_net import MAX_STYLES, NetConfig, TransformNet

log = logging.getLogger("stylize_video.models.checkpoint")

FORMAT_VERSION = 1
_META_KEY = "stylize_video"


_LABELS = ("title", "artist", "year", "credit")


def _label(data: Mapping[str, Any], name: str, where: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # "year": 1889 written by hand
    if not isinstance(value, str):
        raise ValueError(f"{where} field {name!r} must be a string, got {type(value).__name__}")
    return printable(value)


def _object(data: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where} field {name!r} must be an object, got {type(value).__name__}")
    return value


def _style_fields(source: StyleInfo | CheckpointMeta) -> dict[str, Any]:
    """What a style entry and a single-style network's metadata have in common."""
    return {k: getattr(source, k) for k in ("name", *_LABELS, "training", "metrics")}


@dataclass
class StyleInfo:
    """One style of a multi-style network (or of a style-vector file): its name,
    painting credit, how it was trained and how it scored."""

    name: str
    title: str | None = None
    artist: str | None = None
    year: str | None = None
    credit: str | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object) -> StyleInfo:
        """Parse one entry of the metadata's ``styles``; a wrong type is a ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"a style entry must be an object, got {type(data).__name__}")
        name = data.get("name")
        if not isinstance(name, str) or not name or printable(name) != name or len(name) > 200:
            raise ValueError(f"a style needs a name of printable text, got {printable(repr(name), 80)}")
        labels = {k: _label(data, k, f"style {name!r}") for k in _LABELS}
        return cls(
            name=name,
            training=_object(data, "training", f"style {name!r}"),
            metrics=_object(data, "metrics", f"style {name!r}"),
            **labels,
        )

    @classmethod
    def from_meta(cls, meta: CheckpointMeta) -> StyleInfo:
        """A single-style network's metadata as a style entry: its name, credits, training and metrics."""
        return cls(**_style_fields(meta))

    def describe(self) -> str:
        """One line for listings: painting, artist, year."""
        parts = [printable(p) for p in (self.title, self.artist, self.year) if p]
        return ", ".join(parts) if parts else "(no painting credit)"


@dataclass
class CheckpointMeta:
    """Everything a checkpoint says about itself besides its weights.

    ``styles`` is empty for a single-style network; for a multi-style one it names
    each row of the style tables (``len(styles) == arch.num_styles``). ``base`` is
    set only in style-vector files: ``{"name": network, "sha256": fingerprint}``.
    """

    name: str
    arch: NetConfig = field(default_factory=NetConfig)
    preset: str | None = None
    title: str | None = None
    artist: str | None = None
    year: str | None = None
    credit: str | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    format_version: int = FORMAT_VERSION
    styles: list[StyleInfo] = field(default_factory=list)
    base: dict[str, str] | None = None

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["arch"] = self.arch.to_dict()
        # Single-style metadata stays as it was before the style space.
        if not self.styles:
            del d["styles"]
        if self.base is None:
            del d["base"]
        return json.dumps(d, sort_keys=True)

    @property
    def style_names(self) -> list[str]:
        """Names of the styles this file holds: its own name for a single-style network."""
        return [s.name for s in self.styles] if self.styles else [self.name]

    def for_style(self, index: int) -> CheckpointMeta:
        """A single-style view of style ``index`` (its name, credits, training and metrics;
        the network's architecture and preset), as listings and reports show each style."""
        if not self.styles:
            if index != 0:
                raise IndexError(f"{self.name} has one style, not {index + 1}")
            return self
        return dataclasses.replace(self, **_style_fields(self.styles[index]), styles=[], base=None)

    @classmethod
    def from_style(cls, info: StyleInfo, **fields: Any) -> CheckpointMeta:
        """Metadata named and credited as the style ``info`` (with its training and metrics);
        ``fields`` set the rest (``arch``, ``preset``...) and override ``info``'s."""
        return cls(**(_style_fields(info) | fields))

    @classmethod
    def from_json(cls, text: str) -> CheckpointMeta:
        """Parse :meth:`to_json` output; a wrong field type or architecture is a ValueError.

        Label fields (name, title, credit ...) come back with control characters
        escaped (:func:`~stylize_video.text.printable`): they are shown on terminals,
        window titles and logs, where an escape sequence must not act.
        """
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("metadata nests too deeply") from None
        if not isinstance(data, dict):
            raise ValueError("metadata is not a JSON object")
        version = data.get("format_version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"format_version must be an int, got {printable(repr(version), 80)}")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"format version {version} is newer than this program's ({FORMAT_VERSION}); upgrade stylize-video"
            )
        kwargs: dict[str, Any] = {}
        for name in ("name", "preset", *_LABELS, "created"):
            value = _label(data, name, "metadata")
            if value is None:
                if name == "name":
                    raise ValueError("metadata has no name")
                continue
            kwargs[name] = value
        for name in ("training", "metrics"):
            kwargs[name] = _object(data, name, "metadata")
        kwargs["arch"] = arch = NetConfig.from_dict(data.get("arch", {}))
        kwargs["format_version"] = version
        styles = data.get("styles", [])
        if not isinstance(styles, list) or len(styles) > MAX_STYLES:
            raise ValueError(f"metadata field 'styles' must be a list of at most {MAX_STYLES} styles")
        kwargs["styles"] = [StyleInfo.from_dict(entry) for entry in styles]
        names = [s.name for s in kwargs["styles"]]
        if len(set(names)) != len(names):
            raise ValueError(f"style names repeat: {', '.join(sorted(n for n in set(names) if names.count(n) > 1))}")
        base = data.get("base")
        if base is not None:
            if (
                not isinstance(base, dict)
                or not all(isinstance(base.get(k), str) and base[k] for k in ("name", "sha256"))
                or printable(base["name"]) != base["name"]
            ):
                raise ValueError("metadata field 'base' must be an object with a name and a sha256")
            kwargs["base"] = {"name": base["name"], "sha256": base["sha256"]}
            if len(names) != 1:
                raise ValueError(f"a style vector holds one style, its metadata lists {len(names)}")
        elif len(names) != arch.num_styles:
            raise ValueError(f"the network has {arch.num_styles} style(s) but the metadata names {len(names)}")
        return cls(**kwargs)

    def describe(self) -> str:
        """One line for listings: painting, artist, year."""
        parts = [printable(p) for p in (self.title, self.artist, self.year) if p]
        return ", ".join(parts) if parts else "(no painting credit)"


@dataclass
class Checkpoint:
    """A loaded style: a CPU fp32 :class:`TransformNet` in eval mode and its metadata.

    For a multi-style network, ``style_index`` is the row of the style asked for
    (0 when the network was loaded by its file name or path).
    """

    model: TransformNet
    meta: CheckpointMeta
    path: Path | None = None
    style_index: int = 0

    @property
    def style_names(self) -> list[str]:
        """Every style the network holds, by row (one name for a single-style network)."""
        return self.meta.style_names

    @property
    def style(self) -> str:
        """The name of the style asked for."""
        return self.style_names[self.style_index]

    def one_style(self) -> Checkpoint:
        """The style asked for as a single-style network (itself when it is one already).

        The conditional norms' rows of :attr:`style_index` become plain scale and shift
        parameters; the convolutions are shared, so the output is the multi-style
        network's for that style. Named and credited as the style.
        """
        if not self.model.num_styles:
            return self
        index = self.style_index
        single = TransformNet(self.model.config.single())
        tables = {
            f"{name}.{param}"
            for name, module in self.model.named_modules()
            if isinstance(module, InstanceNorm)
            for param in ("weight", "bias")
        }
        # The norms' (num_styles, C) tables give their row; everything else is shared as is.
        state = {k: v[index].clone() if k in tables else v for k, v in self.model.state_dict().items()}
        single.load_state_dict(state, strict=True)
        single.eval().requires_grad_(False)
        meta = dataclasses.replace(self.meta.for_style(index), arch=single.config)
        return Checkpoint(model=single, meta=meta, path=self.path, style_index=0)


@dataclass(frozen=True)
class StyleRef:
    """Where a style name lives: the file, and the row inside a multi-style network.

    Attributes:
        name: the style's name.
        path: the file (a single-style network, a multi-style network or a style vector).
        index: the row in a multi-style network; None for single-style and vector files.
        kind: ``"single"``, ``"multi"`` or ``"vector"``.
    """

    name: str
    path: Path
    index: int | None = None
    kind: str = "single"
