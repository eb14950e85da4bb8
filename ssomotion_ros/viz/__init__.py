"""Pictures of what RViz would show, rendered offscreen on the CPU (see docs/synthesis.md)."""
