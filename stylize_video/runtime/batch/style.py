"""The style a batch applies: one style or a blend, loaded once and shipped to every worker.

A :class:`BatchStyle` is a parsed spec (``starry-night=0.7+great-wave=0.3``, the
same text ``run -s`` takes) with its checkpoints already loaded, so a worker
builds its engine without reading a file (a Ray node need not have them), and the
manifest can key finished files on what each style file holds (its SHA-256).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import StylizeError
from ...files import file_sha256
from ...models.checkpoint import Checkpoint, load_checkpoint
from ..style_spec import StyleSpec, format_style_spec, parse_style_spec

if TYPE_CHECKING:
    from ..stylizer import Stylizer


@dataclass(frozen=True)
class BatchStyle:
    """A style spec and its loaded checkpoints (one per name, in the spec's order).

    Args:
        spec: (name, weight) pairs as :func:`~stylize_video.runtime.style_spec.parse_style_spec` gives them.
        checkpoints: the checkpoint each name loads.
    """

    spec: StyleSpec
    checkpoints: tuple[Checkpoint, ...]

    def __post_init__(self) -> None:
        if not self.spec or len(self.spec) != len(self.checkpoints):
            raise StylizeError(
                f"a batch style needs one checkpoint per style, got {len(self.checkpoints)} for {self.text!r}"
            )

    @classmethod
    def load(cls, text: str) -> BatchStyle:
        """Parse ``text`` as ``run -s`` does and load each style it names.

        Raises:
            StyleSpecError / CheckpointError: a bad spec or an unknown or unusable style.
        """
        spec = parse_style_spec(text)
        return cls(spec, tuple(load_checkpoint(name) for name, _ in spec))

    @classmethod
    def of(cls, style: Checkpoint | BatchStyle) -> BatchStyle:
        """``style`` itself, or one loaded checkpoint as a single-style :class:`BatchStyle`."""
        if isinstance(style, BatchStyle):
            return style
        name = style.meta.name or (str(style.path) if style.path is not None else "style")
        return cls(((name, 1.0),), (style,))

    @property
    def text(self) -> str:
        """The canonical spec text (``name`` alone, else ``a=0.7+b=0.3``)."""
        return format_style_spec(self.spec)

    @property
    def blended(self) -> bool:
        """Whether more than one style is mixed."""
        return len(self.spec) > 1

    def sha256s(self) -> list[str]:
        """Each style file's SHA-256, in the spec's order ("" for a checkpoint not read from a file)."""
        return [file_sha256(ck.path) if ck.path is not None else "" for ck in self.checkpoints]

    def key_record(self, shas: list[str] | None = None) -> dict[str, Any]:
        """What identifies the style in the manifest's settings key.

        One style: its file's hash alone (as manifests written before blends have it,
        so their reruns still match). A blend: each style's name, weight and hash,
        sorted by name (the order a spec is written in does not change the output).
        """
        shas = self.sha256s() if shas is None else shas
        if not self.blended:
            return {"style_sha256": shas[0]}
        parts = sorted([name, weight, sha] for (name, weight), sha in zip(self.spec, shas, strict=True))
        return {"style_blend": parts}

    def digest(self, shas: list[str] | None = None) -> str:
        """One SHA-256 for the whole style: the file's for one style, else that of :meth:`key_record`."""
        shas = self.sha256s() if shas is None else shas
        if not self.blended:
            return shas[0]
        return hashlib.sha256(json.dumps(self.key_record(shas), sort_keys=True).encode()).hexdigest()

    def stylizer(self, **engine: Any) -> Stylizer:
        """The engine for this style, as ``Stylizer(spec, **engine)`` builds it, from the loaded networks.

        Raises:
            StylizeError: a blended style goes by a name with ``+`` in it (a spec cannot name it).
        """
        from ..stylizer import Stylizer

        stylizer = Stylizer(self.checkpoints[0], **engine)
        if not self.blended:
            return stylizer
        # Each network is registered under the name the engine gives it (its metadata's
        # name, or a multi-style network's row); the weights then go to those names. The
        # weights are written in full (repr), not rounded as format_style_spec does.
        weights: dict[str, float] = {}
        for name, (_, weight) in zip(stylizer.preload(*self.checkpoints), self.spec, strict=True):
            if "+" in name:
                stylizer.close()
                raise StylizeError(f"style {name!r} has '+' in its name: it cannot be blended in a batch")
            weights[name] = weights.get(name, 0.0) + weight  # two names for one style: one weight
        stylizer.set_style("+".join(f"{name}={weight!r}" for name, weight in weights.items()))
        return stylizer
