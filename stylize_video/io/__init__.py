"""Frame sources, sinks, images and safe output paths."""
