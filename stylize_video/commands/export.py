"""``stylize-video export``: write a style network as an ONNX graph."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a style to ONNX (for OpenVINO, ONNX Runtime, TensorRT)",
        description=(
            "Export a style network to an ONNX file (opset >= 17, dynamic height/width, credits and settings "
            "in the model metadata), verified against PyTorch on an odd-sized frame. The graph takes float32 "
            "(1, 3, H, W) RGB in [0, 1] with H and W multiples of the network's stride (8 for -lite styles, "
            "4 for full ones; pad other sizes and crop the output) and returns the same. A style named inside a "
            "multi-style network exports that style alone, like a single-style file; the network's file (or "
            "its name) exports the whole network: the graph then takes a second input, 'style', float32 "
            "(num_styles,) mixing weights, and its metadata names the styles (nothing is baked in)."
        ),
        epilog="example: stylize-video export starry-night-lite -o starry-night-lite.onnx",
    )
    p.add_argument("style", help="style name (see `stylize-video styles`) or checkpoint path")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default: 17)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..runtime.backends.onnx_export import export_onnx

    result = export_onnx(args.style, args.output, overwrite=args.overwrite, opset=args.opset)
    h, w = result.check_size
    what = result.style
    if result.styles:
        what += f": {len(result.styles)} styles, {', '.join(result.styles)}; input 'style' takes their weights"
    print(
        f"wrote {result.path} ({what}, {result.bytes / 1e6:.1f} MB); "
        f"matches PyTorch within {result.mean_abs_diff * 255:.3f}/255 mean abs on a {w}x{h} frame"
    )
    return 0
