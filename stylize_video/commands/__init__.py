"""CLI subcommands. Each module has ``register(subparsers)``; ``cli.main`` wires them.

A command's handler takes the parsed namespace and returns an exit code; it may
raise :class:`stylize_video.errors.StylizeError`, which ``cli.main`` reports.
Handlers import heavy modules (torch, cv2, av) inside the function so that
``stylize-video --help`` stays fast.
"""
