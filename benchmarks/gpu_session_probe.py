"""Describe video files (codec, size, frames, audio, duration); optionally save a middle frame.

Used by ``gpu_session.sh checks`` to show what the CLI wrote on the GPU machine:

    python -m benchmarks.gpu_session_probe out.mp4 --frames-to /tmp/frames
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--frames-to", type=Path, default=None, help="save each file's middle frame here as PNG")
    args = p.parse_args(argv)
    import av  # after parsing: --help works where PyAV is not installed

    for path in args.files:
        try:
            with av.open(str(path)) as c:
                v = c.streams.video[0]
                frames = list(c.decode(video=0))
                audio = [a.codec_context.name for a in c.streams.audio]
                seconds = float(c.duration or 0) / 1e6
                print(f"{path}: {v.codec_context.name} {v.width}x{v.height}, {len(frames)} frames, "
                      f"audio {audio}, {seconds:.2f} s")  # fmt: skip
                if args.frames_to is not None and frames:
                    frames[len(frames) // 2].to_image().save(args.frames_to / f"{path.name}.png")
        except Exception as exc:  # report every file, whatever is wrong with one
            print(f"{path}: unreadable: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
