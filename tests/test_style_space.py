"""The style space (issue 17): conditional instance norm, multi-style checkpoints,
style vectors, blend specs, morphs, and blends on every backend."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from stylize_video.errors import CheckpointError
from stylize_video.models.checkpoint import (
    CheckpointMeta,
    StyleInfo,
    available_styles,
    base_fingerprint,
    load_checkpoint,
    read_style_vector,
    save_checkpoint,
    save_style_vector,
    style_refs,
)
from stylize_video.models.transform_net import MAX_STYLES, NetConfig, TransformNet, normalize_weights
from stylize_video.runtime.style_spec import StyleSpecError, format_style_spec, parse_style_spec
from stylize_video.runtime.stylizer import Stylizer

from .conftest import TINY, make_image


def _styled(base: TransformNet, seed: int) -> TransformNet:
    """``base`` with random instance-norm affines: another 'style' on the same convs."""
    net = copy.deepcopy(base)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, norm in net.norms():
            norm.weight.copy_(1 + 0.5 * torch.randn(norm.weight.shape, generator=g))
            norm.bias.copy_(0.5 * torch.randn(norm.bias.shape, generator=g))
    return net.eval()


@pytest.fixture
def singles(tiny_net: TransformNet) -> list[TransformNet]:
    return [_styled(tiny_net, seed) for seed in range(3)]


@pytest.fixture
def gallery(singles: list[TransformNet]) -> TransformNet:
    return TransformNet.from_single(singles).eval()


def _one_hot(i: int, n: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(i), n).float()


# ------------------------------------------------------------------ the network
def test_num_styles_bounds_and_parameter_count() -> None:
    for n in (0, 1, 8):
        cfg = dataclasses.replace(TINY, num_styles=n)
        assert sum(p.numel() for p in TransformNet(cfg).parameters()) == cfg.num_parameters()
    for bad in (-1, MAX_STYLES + 1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="num_styles"):
            dataclasses.replace(TINY, num_styles=bad)  # type: ignore[arg-type]
    # Single-style architectures serialise as before (no new key in old files' metadata).
    assert "num_styles" not in TINY.to_dict()
    assert NetConfig.from_dict(dataclasses.replace(TINY, num_styles=4).to_dict()).num_styles == 4


def test_single_style_network_keeps_its_keys_and_refuses_weights(tiny_net: TransformNet) -> None:
    assert tiny_net.state_dict()["head.norm.weight"].shape == (4,)
    with pytest.raises(ValueError, match="single style"):
        tiny_net(torch.rand(1, 3, 16, 16), torch.ones(1))


def test_from_single_of_one_net_is_that_net_bit_for_bit(singles: list[TransformNet]) -> None:
    one = TransformNet.from_single(singles[:1]).eval()
    x = torch.rand(2, 3, 21, 35)
    with torch.no_grad():
        expected = singles[0](x)
        assert torch.equal(one(x), expected)
        assert torch.equal(one(x, torch.ones(1)), expected)


def test_one_hot_weights_give_each_style(singles: list[TransformNet], gallery: TransformNet) -> None:
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        for i, single in enumerate(singles):
            torch.testing.assert_close(gallery(x, _one_hot(i, 3)), single(x), atol=1e-6, rtol=0)
        torch.testing.assert_close(gallery(x), singles[0](x), atol=0, rtol=0)  # None = style 0


def test_a_blend_lies_between_its_parents(gallery: TransformNet) -> None:
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        a, b = gallery(x, _one_hot(0, 3)), gallery(x, _one_hot(1, 3))
        dists = []
        for t in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = gallery(x, torch.tensor([1 - t, t, 0.0]))
            dists.append(((y - a).abs().mean().item(), (y - b).abs().mean().item()))
    assert [d[0] for d in dists] == sorted(d[0] for d in dists)  # moves away from a
    assert [d[1] for d in dists] == sorted((d[1] for d in dists), reverse=True)  # towards b
    mid = dists[2]
    assert 0 < mid[0] < dists[-1][0] and 0 < mid[1] < dists[0][1]


def test_per_image_weights_in_a_batch(gallery: TransformNet) -> None:
    x = torch.rand(1, 3, 16, 16).repeat(2, 1, 1, 1)
    w = torch.stack([_one_hot(0, 3), _one_hot(2, 3)])
    with torch.no_grad():
        y = gallery(x, w)
        torch.testing.assert_close(y[1:], gallery(x[:1], _one_hot(2, 3)))
    with pytest.raises(ValueError, match="shape"):
        gallery(x, torch.ones(2))


def test_style_params_add_style_and_vectors(gallery: TransformNet) -> None:
    params = gallery.style_params()
    assert len(params) == 2 * len(gallery.norms()) and all(p.shape[0] == 3 for p in params)
    vec = gallery.get_style_vector(1)
    assert sum(v.numel() for v in vec.values()) == gallery.config.style_channels
    i = gallery.add_style(init=1)
    assert i == 3 and gallery.num_styles == gallery.config.num_styles == 4
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(gallery(x, _one_hot(3, 4)), gallery(x, _one_hot(1, 4)))
    j = gallery.add_style()  # mean of the rows
    torch.testing.assert_close(gallery.get_style_vector(j)["head.norm.bias"], gallery.head.norm.bias[:4].mean(0))
    gallery.set_style_vector(j, vec)
    torch.testing.assert_close(gallery.get_style_vector(j)["head.norm.weight"], vec["head.norm.weight"])
    with pytest.raises(ValueError, match="does not fit"):
        gallery.set_style_vector(0, {"head.norm.weight": vec["head.norm.weight"]})
    with pytest.raises(IndexError):
        gallery.get_style_vector(9)
    # Only the style tables train when the rest is frozen.
    gallery.requires_grad_(False)
    for p in gallery.style_params():
        p.requires_grad_(True)
    gallery(x, _one_hot(0, 5)).mean().backward()
    assert all(p.grad is not None for p in gallery.style_params())


def test_from_single_refuses_mixed_architectures(tiny_net: TransformNet) -> None:
    other = TransformNet(dataclasses.replace(TINY, res_blocks=2))
    with pytest.raises(ValueError, match="architecture"):
        TransformNet.from_single([tiny_net, other])
    with pytest.raises(ValueError):
        TransformNet.from_single([])


def test_normalize_weights() -> None:
    torch.testing.assert_close(normalize_weights([2, 2]), torch.tensor([0.5, 0.5]))
    for bad in ([0, 0], [1, -1], [float("nan"), 1]):
        with pytest.raises(ValueError):
            normalize_weights(bad)


# ------------------------------------------------------------------ files
def _gallery_meta(n: int = 3) -> CheckpointMeta:
    return CheckpointMeta(
        name="gallery",
        preset=None,
        styles=[
            StyleInfo(
                name=f"style-{i}",
                title=f"Painting {i}",
                artist="Someone",
                year=str(1880 + i),
                credit=f"credit {i}",
                training={"teacher": f"style-{i}.safetensors", "iterations_done": 10 * i},
                metrics={"val_style": 1.0 + i, "val_content": 2.0 + i},
            )
            for i in range(n)
        ],
    )


@pytest.fixture
def styles_dir(tmp_path: Path, gallery: TransformNet, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "styles"
    d.mkdir()
    save_checkpoint(d / "gallery.safetensors", gallery, _gallery_meta())
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(d))
    return d


def test_multi_style_checkpoint_round_trip(styles_dir: Path, gallery: TransformNet) -> None:
    ck = load_checkpoint(styles_dir / "gallery.safetensors")
    assert ck.style_names == ["style-0", "style-1", "style-2"] and ck.style_index == 0
    assert ck.meta.styles[2].title == "Painting 2" and ck.meta.styles[2].credit == "credit 2"
    assert ck.meta.styles[1].metrics == {"val_style": 2.0, "val_content": 3.0}
    assert ck.meta.styles[1].training["teacher"] == "style-1.safetensors"
    view = ck.meta.for_style(1)
    assert view.name == "style-1" and view.metrics["val_style"] == 2.0 and view.arch.num_styles == 3
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ck.model(x, _one_hot(2, 3)), gallery(x, _one_hot(2, 3)), atol=2e-3, rtol=0)


def test_available_styles_lists_the_inner_styles(styles_dir: Path, singles: list[TransformNet]) -> None:
    # A single file of the same name in the same folder: the multi-style network wins.
    save_checkpoint(styles_dir / "style-1.safetensors", singles[0], CheckpointMeta(name="style-1"))
    save_checkpoint(styles_dir / "solo.safetensors", singles[0], CheckpointMeta(name="solo"))
    styles = available_styles()
    for i in range(3):
        assert styles[f"style-{i}"] == styles_dir / "gallery.safetensors"
    assert styles["solo"] == styles_dir / "solo.safetensors"
    assert "gallery" not in styles  # the network's file name is not a style ...
    assert load_checkpoint("gallery").style_index == 0  # ... but loads by name
    ck = load_checkpoint("style-2")
    assert ck.style_index == 2 and ck.style == "style-2" and ck.path == styles_dir / "gallery.safetensors"
    assert style_refs()["style-1"].kind == "multi"
    # The shadowed single file is still loadable by its path.
    assert load_checkpoint(styles_dir / "style-1.safetensors").meta.styles == []


def test_an_earlier_folder_still_wins(
    styles_dir: Path, tmp_path: Path, singles: list[TransformNet], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    save_checkpoint(first / "style-0.safetensors", singles[1], CheckpointMeta(name="style-0"))
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", f"{first}:{styles_dir}")
    assert available_styles()["style-0"] == first / "style-0.safetensors"
    assert available_styles()["style-1"] == styles_dir / "gallery.safetensors"


def test_multi_style_metadata_is_validated(tmp_path: Path, gallery: TransformNet) -> None:
    with pytest.raises(CheckpointError, match="names 2"):
        save_checkpoint(tmp_path / "x.safetensors", gallery, _gallery_meta(2))
    meta = _gallery_meta()
    meta.styles[1].name = "style-0"
    with pytest.raises(CheckpointError, match="distinct"):
        save_checkpoint(tmp_path / "x.safetensors", gallery, meta)
    for bad, match in (
        ({"styles": "nope"}, "list"),
        ({"styles": [{"name": ""}]}, "name"),
        ({"styles": [{"name": "a"}, {"name": "a"}, {"name": "b"}]}, "repeat"),
        ({"styles": [{"name": "a", "year": []}]}, "string"),
    ):
        data = json.loads(_gallery_meta().to_json()) | bad
        with pytest.raises(ValueError, match=match):
            CheckpointMeta.from_json(json.dumps(data))


def test_header_check_refuses_tables_that_do_not_match(tmp_path: Path, gallery: TransformNet) -> None:
    from safetensors.torch import save_file

    meta = dataclasses.replace(_gallery_meta(), arch=gallery.config)
    state = {k: v.half() for k, v in gallery.state_dict().items()}
    state["head.norm.weight"] = torch.ones(2, 4, dtype=torch.half)  # 2 rows where the header promises 3
    p = tmp_path / "bad.safetensors"
    save_file(state, str(p), metadata={"stylize_video": meta.to_json()})
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(p)


# ------------------------------------------------------------------ style vectors
def test_style_vector_round_trip(styles_dir: Path, gallery: TransformNet) -> None:
    learned = copy.deepcopy(gallery)
    i = learned.add_style()
    with torch.no_grad():
        for p in learned.style_params():
            p[i].uniform_(0.5, 1.5)
    info = StyleInfo(name="my-painting", title="Mine", training={"seconds": 12}, metrics={"val_style": 3.0})
    path = save_style_vector(styles_dir / "my-painting.safetensors", learned, i, info, base="gallery")
    assert path.stat().st_size < 20_000
    vec, meta = read_style_vector(path)
    assert meta.base == {"name": "gallery", "sha256": base_fingerprint(gallery)}
    assert set(vec) == set(learned.style_vector_shapes())
    assert available_styles()["my-painting"] == path
    ck = load_checkpoint("my-painting")
    assert ck.style_names == ["style-0", "style-1", "style-2", "my-painting"] and ck.style_index == 3
    assert ck.meta.styles[3].metrics == {"val_style": 3.0}
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ck.model(x, _one_hot(3, 4)), learned(x, _one_hot(i, 4)), atol=2e-3, rtol=0)


def test_style_vector_on_a_single_style_base(tmp_path: Path, singles: list[TransformNet]) -> None:
    save_checkpoint(tmp_path / "solo.safetensors", singles[0], CheckpointMeta(name="solo", title="Solo"))
    net = TransformNet.from_single([singles[0]])
    i = net.add_style()
    with torch.no_grad():
        net.head.norm.bias[i].fill_(0.3)
    path = save_style_vector(tmp_path / "new.safetensors", net, i, StyleInfo(name="new"), base="solo")
    ck = load_checkpoint(path)  # the base is found beside the vector
    assert ck.style_names == ["solo", "new"] and ck.style_index == 1
    assert ck.meta.styles[0].title == "Solo"


def test_style_vector_without_its_base_is_one_line(tmp_path: Path, gallery: TransformNet, styles_dir: Path) -> None:
    path = save_style_vector(tmp_path / "orphan.safetensors", gallery, 0, StyleInfo(name="orphan"), base="elsewhere")
    with pytest.raises(CheckpointError, match="base network 'elsewhere' is not installed") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    # A base of that name with other convolution weights is refused too.
    other = TransformNet.from_single([_styled(TransformNet(TINY), 9)])
    other_meta = CheckpointMeta(name="elsewhere", styles=[StyleInfo(name="x")])
    save_checkpoint(tmp_path / "elsewhere.safetensors", other, other_meta)
    with pytest.raises(CheckpointError, match="another version"):
        load_checkpoint(path)


def test_fingerprint_ignores_style_rows_and_survives_fp16(gallery: TransformNet, tmp_path: Path) -> None:
    before = base_fingerprint(gallery)
    grown = copy.deepcopy(gallery)
    grown.add_style()
    assert base_fingerprint(grown) == before
    save_checkpoint(tmp_path / "g.safetensors", gallery, _gallery_meta())
    assert base_fingerprint(load_checkpoint(tmp_path / "g.safetensors").model) == before


# ------------------------------------------------------------------ specs
def test_parse_style_spec() -> None:
    assert parse_style_spec("starry-night") == (("starry-night", 1.0),)
    assert parse_style_spec("a=0.7+b=0.3") == (("a", 0.7), ("b", 0.3))
    assert parse_style_spec("a=7 + b=3") == (("a", 0.7), ("b", 0.3))
    assert parse_style_spec("a+b") == (("a", 0.5), ("b", 0.5))
    assert parse_style_spec("a=2+b") == (("a", 2 / 3), ("b", 1 / 3))
    assert parse_style_spec("a=1+b=0") == (("a", 1.0),)
    assert format_style_spec(parse_style_spec("a=2+b")) == "a=0.667+b=0.333"
    assert format_style_spec(parse_style_spec("a")) == "a"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("a+", "empty style name"),
        ("=0.5", "empty style name"),
        ("a=x+b", "not a number"),
        ("a=-1+b=2", ">= 0"),
        ("a=inf", ">= 0"),
        ("a=0+b=0", "sum to 0"),
        ("a+a", "twice"),
    ],
)
def test_bad_style_specs_are_one_line_errors(text: str, match: str) -> None:
    with pytest.raises(StyleSpecError, match=match) as info:
        parse_style_spec(text)
    assert "\n" not in str(info.value)


def test_unknown_names_list_close_matches(styles_dir: Path) -> None:
    with pytest.raises(StyleSpecError, match="did you mean style-1"):
        parse_style_spec("style-1=0.5+stlye-1=0.5", known=available_styles())
    with pytest.raises(CheckpointError, match="did you mean"):
        Stylizer("style-0+styel-2", device="cpu")


def test_a_path_with_a_plus_is_one_style(tmp_path: Path, tiny_net: TransformNet) -> None:
    p = save_checkpoint(tmp_path / "a+b=c.safetensors", tiny_net, CheckpointMeta(name="odd"))
    assert parse_style_spec(str(p)) == ((str(p), 1.0),)


# ------------------------------------------------------------------ engine
def test_stylizer_blends_one_network_in_one_pass(styles_dir: Path, gallery: TransformNet) -> None:
    st = Stylizer("style-0=0.7+style-2=0.3", device="cpu", precision="fp32", backend="torch", bgr=False)
    assert st.style_name == "style-0=0.7+style-2=0.3"
    assert set(st.styles) >= {"style-0", "style-1", "style-2"}
    calls = []
    run = st.backend.run
    st.backend.run = lambda x, style=None: (calls.append(style), run(x, style))[1]  # type: ignore[method-assign]
    frame = make_image()
    out = st(frame)
    assert len(calls) == 1 and torch.allclose(calls[0], torch.tensor([0.7, 0.0, 0.3]))
    st(frame)
    assert calls[1] is calls[0]  # the same weights object every frame: nothing recomputed
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        ref = gallery(x, torch.tensor([0.7, 0.0, 0.3]))[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(out.astype(float) - ref).max() <= 2.0  # fp16 storage of the file


def test_stylizer_blends_across_networks_by_mixing_outputs(tiny_checkpoint: Path, singles: list[TransformNet]) -> None:
    st = Stylizer(singles[1], device="cpu", precision="fp32", backend="torch", bgr=False)
    other = st.preload(singles[2])[0]
    first = st.style_name
    st.set_style(f"{first}=0.25+{other}=0.75", morph=0)
    frame = make_image()
    out = st(frame).astype(float)
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        ref = (0.25 * singles[1](x) + 0.75 * singles[2](x))[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(out - ref).max() <= 1.0


def test_morph_is_time_based_monotone_and_reaches_the_target(styles_dir: Path) -> None:
    st = Stylizer("style-0", device="cpu", precision="fp32", backend="torch")
    clock = [100.0]
    st.clock = lambda: clock[0]
    st.set_style("style-1", morph=0.5)
    assert st.style_name == "style-1" and st.morphing
    trajectory = [st.blend(100.0 + t).get("style-1", 0.0) for t in np.linspace(0, 0.5, 11)]
    assert trajectory[0] == pytest.approx(0.0, abs=1e-6) and trajectory == sorted(trajectory)
    assert trajectory[-1] == pytest.approx(1.0)
    # Each frame renders at its own time; none is held back.
    frame = make_image()
    outs = []
    for t in (0.0, 0.25, 0.6):
        outs.append(st.stylize(st.transfer.upload(frame), now=100.0 + t))
    assert not torch.equal(outs[0], outs[1])
    clock[0] = 100.6
    assert not st.morphing and st.blend() == {"style-1": 1.0}


def test_morph_zero_is_a_cut_and_a_new_target_starts_from_where_it_is(styles_dir: Path) -> None:
    st = Stylizer("style-0", device="cpu", precision="fp32", backend="torch")
    clock = [0.0]
    st.clock = lambda: clock[0]
    st.set_style("style-1", morph=0)
    assert st.blend() == {"style-1": 1.0} and not st.morphing
    st.set_style("style-2", morph=1.0)
    clock[0] = 0.5
    halfway = st.blend()
    st.set_style("style-0", morph=1.0)  # mid-morph: starts from the current mixture, no jump
    assert st.blend(0.5) == pytest.approx(halfway)
    # A call without morph= cuts by default (a sheet or a still gets what it asked for) ...
    assert st.morph_seconds == 0.0
    st.set_style("style-1")
    assert st.blend() == {"style-1": 1.0}
    # ... and morphs for as long as the front end sets.
    st.morph_seconds = Stylizer.DEFAULT_MORPH_SECONDS
    st.set_style("style-2")
    assert st.morphing


def test_learned_vector_blends_with_its_gallery_for_free(styles_dir: Path, gallery: TransformNet) -> None:
    learned = copy.deepcopy(gallery)
    i = learned.add_style(init=0)
    save_style_vector(styles_dir / "mine.safetensors", learned, i, StyleInfo(name="mine"), base="gallery")
    st = Stylizer("style-1", device="cpu", precision="fp32", backend="torch")
    st.set_style("mine=0.5+style-1=0.5", morph=0)
    assert len(st._styles.nets) == 1  # one network: the vector joined the gallery's rows
    st(make_image())


_BACKENDS = [b for b in ("openvino", "onnxruntime") if importlib.util.find_spec(b) is not None]


@pytest.mark.skipif(not _BACKENDS, reason="neither openvino nor onnxruntime is installed")
@pytest.mark.parametrize("backend", _BACKENDS)
def test_exported_backends_match_torch_on_a_blend(styles_dir: Path, backend: str) -> None:
    frame = make_image(37, 53)
    spec = "style-0=0.2+style-1=0.5+style-2=0.3"
    ref = Stylizer(spec, device="cpu", precision="fp32", backend="torch")(frame).astype(int)
    st = Stylizer(spec, device="cpu", precision="fp32", backend=backend)
    assert np.abs(st(frame).astype(int) - ref).max() <= 2
    # Switching weights needs no new graph: same backend object, other output.
    backend_obj = st.backend
    st.set_style("style-1", morph=0)
    assert st.backend is backend_obj
    ref1 = Stylizer("style-1", device="cpu", precision="fp32", backend="torch")(frame).astype(int)
    assert np.abs(st(frame).astype(int) - ref1).max() <= 2


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")
def test_openvino_bakes_steady_weights_and_never_runs_stale_ones(styles_dir: Path) -> None:
    from stylize_video.runtime.backends.openvino import BAKE_AFTER_FRAMES

    frame = make_image(37, 53)

    def reference(spec: str) -> np.ndarray:
        return Stylizer(spec, device="cpu", precision="fp32", backend="torch")(frame).astype(int)

    st = Stylizer("style-0", device="cpu", precision="fp32", backend="openvino")
    backend: Any = st.backend
    # Photos of many sizes (a batch of images): no size holds, nothing is baked.
    for i in range(2 * BAKE_AFTER_FRAMES):
        st(make_image(30 + 8 * i, 40))
    assert backend._baking is None
    for _ in range(BAKE_AFTER_FRAMES + 1):
        st(frame)
    assert backend._baking is not None
    backend._baking.result(timeout=60)
    [(weights, baked)] = backend._baked.values()
    assert weights.tolist() == [1.0, 0.0, 0.0]
    assert baked is not None
    dynamic = backend._requests

    class Refuse:
        def infer(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("ran on the graph with the weights input")

    backend._requests = {size: Refuse() for size in dynamic}  # so the next frame must run baked
    assert np.abs(st(frame).astype(int) - reference("style-0")).max() <= 2
    backend._requests = dynamic
    # Other weights run at once on the graph with the input, never on the baked one.
    st.set_style("style-2=0.5+style-1=0.5", morph=0)
    assert np.abs(st(frame).astype(int) - reference("style-2=0.5+style-1=0.5")).max() <= 2
    # A morph changes the weights every frame: nothing is baked while it moves.
    ticks = iter(range(100))
    st.clock = lambda: next(ticks) / 10  # 0.1 s a frame
    st.set_style("style-1", morph=1)
    backend._baking.result(timeout=60)
    bakes = backend._baking
    for _ in range(4):
        st(frame)
    assert backend._baking is bakes


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
def test_export_of_a_multi_style_network_takes_the_weights(styles_dir: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    from stylize_video.runtime.backends.onnx_export import export_onnx, read_exported

    out = tmp_path / "gallery.onnx"
    export_onnx(styles_dir / "gallery.safetensors", out)  # the network's file: every style
    graph = read_exported(out)
    assert graph.num_styles == 3 and graph.style_names == ["style-0", "style-1", "style-2"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "style"]
    st = Stylizer(str(out), device="cpu", backend="onnxruntime")
    assert "style-2" in st.styles
    st.set_style("style-2=0.5+style-0=0.5", morph=0)
    st(make_image(32, 32))
    export_onnx("gallery", tmp_path / "by-name.onnx")  # the network's name: the same
    assert read_exported(tmp_path / "by-name.onnx").num_styles == 3


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
def test_export_of_one_named_style_is_a_one_input_graph(
    styles_dir: Path, gallery: TransformNet, tmp_path: Path
) -> None:
    import onnxruntime as ort

    from stylize_video.runtime.backends.onnx_export import export_onnx, read_exported

    out = tmp_path / "style-1.onnx"
    result = export_onnx("style-1", out)
    assert result.mean_abs_diff * 255 <= 1.0 and not result.styles
    graph = read_exported(out)
    assert graph.num_styles == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    props = session.get_modelmeta().custom_metadata_map
    assert props["style"] == "style-1" and props["title"] == "Painting 1" and props["credit"] == "credit 1"
    x = torch.rand(1, 3, 24, 32)
    (y,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want = gallery(x, _one_hot(1, 3)).numpy()
    assert float(np.abs(y - want).mean()) * 255 <= 1.0


def test_one_style_of_a_gallery_is_the_same_network_for_that_style(styles_dir: Path, gallery: TransformNet) -> None:
    ck = load_checkpoint("style-2")
    one = ck.one_style()
    assert one.model.num_styles == 0 and one.meta.name == "style-2" and one.meta.title == "Painting 2"
    assert one.one_style() is one
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(one.model(x), ck.model(x, _one_hot(2, 3)), atol=1e-5, rtol=0)


# ------------------------------------------------------------------ commands
def test_styles_command_lists_each_style_of_a_network(
    styles_dir: Path, gallery: TransformNet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stylize_video.cli import main

    learned = copy.deepcopy(gallery)
    i = learned.add_style()
    save_style_vector(styles_dir / "mine.safetensors", learned, i, StyleInfo(name="mine", title="Mine"), base="gallery")
    monkeypatch.setattr("stylize_video.models.checkpoint._PROJECT_CHECKPOINTS", styles_dir / "none")
    assert main(["styles", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"style-0", "style-1", "style-2", "mine"}
    assert rows["style-2"]["network"] == "gallery" and rows["style-2"]["index"] == 2
    assert rows["style-2"]["painting"] == "Painting 2, Someone, 1882"
    assert rows["mine"]["kind"] == "vector" and rows["mine"]["index"] == 3
    assert main(["styles", "--markdown"]) == 0
    table = capsys.readouterr().out.splitlines()
    row = next(line for line in table if line.startswith("| `style-1`"))
    assert "in `gallery`" in row and "distilled from `style-1`" in row and "| 2.000 |" in row  # its own val_style
    assert main(["styles"]) == 0
    assert "[gallery]" in capsys.readouterr().out


def test_a_distilled_gallery_row_shows_its_teacher_and_the_network_training() -> None:
    """distill-styles writes each row's teacher as ``distilled_from`` and the run's
    iterations, batch and device once, on the network: the table row shows both."""
    from stylize_video.training.report import markdown_row

    style = CheckpointMeta(
        name="a-lite",
        preset="lite",
        training={"distilled_from": {"name": "a-lite", "iterations": 500}, "batch_size": 4, "image_size": 128},
        metrics={"val_style": 0.25},
    )
    network = {"iterations_done": 1809, "batch_size": 8, "device": "cpu", "init": "/x/gallery-p3.safetensors"}
    row = markdown_row("a-lite", style, 175_000, "gallery", network)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "lite, in `gallery`, distilled from `a-lite`"
    assert cells[3] == "`gallery-p3` + 1809 x 8" and cells[6] == "CPU" and cells[8] == "0.250"
    assert cells[10] == "171 KiB (shared)"
    # without the network's settings the row says what it does not know
    assert markdown_row("a-lite", style, 175_000, "gallery").split("|")[4].strip() == "? x 4"


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
def test_export_command_names_the_styles(styles_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stylize_video.cli import main

    assert main(["export", "gallery", "-o", str(tmp_path / "g.onnx")]) == 0
    out = capsys.readouterr().out
    assert "3 styles, style-0, style-1, style-2" in out and "'style'" in out
    assert main(["export", "style-2", "-o", str(tmp_path / "s.onnx")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "style-2" in out and "styles" not in out and "'style'" not in out


def test_inference_mixture_cache_follows_edits(gallery: TransformNet) -> None:
    x = torch.rand(1, 3, 16, 16)
    w = torch.tensor([0.2, 0.3, 0.5])
    with torch.inference_mode():
        first = gallery(x, w)
    with torch.no_grad():
        gallery.head.norm.weight[2].mul_(2.0)  # an edit of the table
        w.copy_(torch.tensor([0.5, 0.3, 0.2]))  # and of the weights, in place
    with torch.inference_mode():
        second = gallery(x, w)
    with torch.enable_grad():
        fresh = gallery(x, w.clone())
    assert not torch.equal(first, second)
    torch.testing.assert_close(second, fresh.detach())


def test_load_checkpoint_of_a_blend_says_so(styles_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="blend of styles"):
        load_checkpoint("style-0=0.5+style-1=0.5")


def test_two_networks_with_the_same_style_names_stay_apart(gallery: TransformNet) -> None:
    from stylize_video.models.checkpoint import Checkpoint

    other = TransformNet.from_single([_styled(TransformNet(TINY), s) for s in (7, 8, 9)]).eval()
    a = Checkpoint(model=gallery, meta=dataclasses.replace(_gallery_meta(), arch=gallery.config), style_index=1)
    b = Checkpoint(model=other, meta=dataclasses.replace(_gallery_meta(), arch=other.config), style_index=1)
    st = Stylizer(a, device="cpu", precision="fp32", backend="torch", bgr=False)
    assert st.style_name == "style-1"
    st.set_style(b)
    assert st.style_name.startswith("style-1#")
    frame = make_image()
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        ref = other(x, _one_hot(1, 3))[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(st(frame).astype(float) - ref).max() <= 1.0


def test_sheet_labels_a_gallery_row_by_its_own_painting(
    styles_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2

    from stylize_video.cli import main
    from stylize_video.io import sheet

    labels: list[str] = []
    real = sheet.label_tile

    def recording(image: np.ndarray, text: str) -> np.ndarray:
        labels.append(text)
        return real(image, text)

    monkeypatch.setattr(sheet, "label_tile", recording)
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), make_image(40, 48))
    argv = ["sheet", str(photo), "-s", "style-2", "-s", "style-0", "-o", str(tmp_path / "s.jpg"), "--device", "cpu"]
    assert main(argv) == 0
    assert labels == ["original", "Painting 2", "Painting 0"]  # not the network's own title
