import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C in the few milliseconds before main() can catch it
    print("stylize-video: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
