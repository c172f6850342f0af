"""Writes serve_config.gpu.yaml into k8s/rayservice.yaml's serveConfigV2, so the two never drift.

`python k8s/render.py --write` refreshes the manifest; without `--write` it
only says whether the manifest is current (exit 1 if not). The block is copied
as text, comments included, so the manifest reads like the file it came from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVE_CONFIG = ROOT / "serve_config.gpu.yaml"
MANIFEST = ROOT / "k8s" / "rayservice.yaml"
BLOCK_KEY = "  serveConfigV2: |"
BLOCK_INDENT = " " * 4


def render(manifest: str, serve_config: str) -> str:
    """The manifest with its serveConfigV2 block replaced by ``serve_config``, indented under the key."""
    lines = manifest.splitlines()
    try:
        start = lines.index(BLOCK_KEY) + 1
    except ValueError:
        raise SystemExit(f"{MANIFEST.name}: no line {BLOCK_KEY!r} to render into") from None
    end = start
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(BLOCK_INDENT)):
        end += 1
    block = [BLOCK_INDENT + line if line.strip() else "" for line in serve_config.splitlines()]
    return "\n".join([*lines[:start], *block, *lines[end:]]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite k8s/rayservice.yaml in place")
    args = parser.parse_args()
    current = MANIFEST.read_text("utf-8")
    wanted = render(current, SERVE_CONFIG.read_text("utf-8"))
    if current == wanted:
        print(f"{MANIFEST.relative_to(ROOT)} is current with {SERVE_CONFIG.name}")
        return 0
    if args.write:
        MANIFEST.write_text(wanted, "utf-8")
        print(f"rewrote serveConfigV2 of {MANIFEST.relative_to(ROOT)} from {SERVE_CONFIG.name}")
        return 0
    print(f"{MANIFEST.relative_to(ROOT)} differs from {SERVE_CONFIG.name}: run python k8s/render.py --write")
    return 1


if __name__ == "__main__":
    sys.exit(main())
