"""Print the GPU dependency set as one pip requirements list: requirements/gpu.txt with its ``-r`` includes
expanded, where a pin in gpu.txt replaces the same package's pin from the CPU set.

pip itself refuses two pins of one package ("ResolutionImpossible"), and the GPU set must differ from the
CPU set where vllm's dependencies do (numpy: mistral_common wants <2.4 on Python 3.11). Standard library
only, so it runs before anything is installed:

    python scripts/gpu_requirements.py > /tmp/gpu-requirements.txt && pip install -r /tmp/gpu-requirements.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def package(line: str) -> str | None:
    """The normalised package name a requirement line pins, or None for a comment, blank or option line."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return None
    match = _NAME.match(text)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def expand(path: Path) -> list[str]:
    """``path``'s requirement lines, ``-r`` includes first in place, the including file's pins winning."""
    own: list[str] = []
    included: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith(("-r ", "--requirement ")):
            included += expand(path.parent / line.split(None, 1)[1])
        elif package(line):
            own.append(line.split("#", 1)[0].strip())
    overridden = {package(line) for line in own}
    return [line for line in included if package(line) not in overridden] + own


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "requirements" / "gpu.txt"
    print("\n".join(expand(path)))


if __name__ == "__main__":
    main()
