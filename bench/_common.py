"""Shared set-up for the benchmarks: Django on the test settings (embedded services started), synthetic 720p clips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings_test")


# The project's datasets: ../shared beside the checkout (or two levels up from a git worktree).
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.exists()), ROOT / "shared")
KUAIMOD_DEV = SHARED / "datasets" / "kuaimod" / "dev.jsonl"


def kuaimod_binary(path: Path) -> tuple[list, list, object]:
    """KuaiMod records from ``path``, their stage-1 inputs and the binary target (1 = violative)."""
    import numpy as np

    from moderation.inference.evaluation import records_as_inputs
    from moderation.inference.kuaimod import kuaimod_read
    from moderation.policies.seed import SAFE_LABEL

    records = kuaimod_read(path).records
    y = np.array([r.tag != SAFE_LABEL for r in records], dtype=int)
    return records, records_as_inputs(records), y


def django_setup() -> None:
    """Django on the test settings, with the embedded services they name started (settings start nothing)."""
    import django

    django.setup()
    from workbench.embedded import start_configured

    start_configured()


def module_at(commit: str, path: str):  # type: ignore[no-untyped-def]
    """The module at ``path`` (e.g. ``moderation/reproduction/hamming.py``) as it was at ``commit``, imported as a
    module of its own: to time the code before a change beside the code after it, in one run."""
    import importlib.util
    import tempfile

    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, check=True, capture_output=True).stdout
    name = f"{Path(path).stem}_at_{commit}"
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:  # imported, the module needs its file no more
        file = Path(folder) / f"{name}.py"
        file.write_bytes(source)
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return module


def plain_clip(path: Path, *, seconds: int = 30, size: str = "1280x720", fps: int = 30) -> Path:
    """A moving test pattern (H.264, no audio), the decode load of an ordinary short video."""
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
             "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
    return path
