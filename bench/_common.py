"""Shared set-up for the benchmarks: Django on the test settings (embedded services started), synthetic 720p clips,
the visibility benches' library (``restricted_world``, ``restricted_library``)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

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


def spread(times: list[float], digits: int = 1) -> dict[str, float]:
    """Median, least and most of ``times``, rounded to ``digits`` (a bench's one JSON row per measure)."""
    return {
        "median": round(statistics.median(times), digits),
        "min": round(min(times), digits),
        "max": round(max(times), digits),
    }


def interleaved_medians(
    client: Any, url: str, versions: Iterable[str], use: Callable[[str], None], *, rounds: int, warm_up: int
) -> dict[str, float]:
    """GET ``url`` through ``client`` (Django's test client) under each version in turn, ``use(version)`` switching
    to it before each request: ``warm_up`` untimed rounds (prepared statements), then ``rounds`` timed ones. The
    median milliseconds per version, to 0.1 ms. Interleaved, so a drift of the machine's speed falls on every
    version alike."""
    versions = list(versions)
    samples: dict[str, list[float]] = {version: [] for version in versions}
    for round_ in range(rounds + warm_up):
        for version in versions:
            use(version)
            t0 = time.perf_counter()
            assert client.get(url).status_code == 200, url
            if round_ >= warm_up:
                samples[version].append((time.perf_counter() - t0) * 1000)
    return {version: round(statistics.median(times), 1) for version, times in samples.items()}


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


def restricted_world():  # type: ignore[no-untyped-def]
    """What both visibility benches measure in: a policy version, the default queue, a queue restricted to a group
    the measured moderator is not in, that moderator (signed in on a test client) and a colleague who uploads."""
    from django.contrib.auth.models import Group
    from django.test import Client

    from moderation.models import ReviewQueue
    from moderation.review.services import review_queue_default
    from tests.factories import PolicyVersionFactory, UserFactory

    policy_version = PolicyVersionFactory()
    open_queue = review_queue_default()
    restricted = ReviewQueue.objects.create(name="Restricted", slug="restricted")
    restricted.allowed_groups.add(Group.objects.create(name="trust-and-safety"))
    moderator, colleague = UserFactory(role="moderator"), UserFactory(role="moderator")
    client = Client()
    client.force_login(moderator)
    return policy_version, open_queue, restricted, moderator, colleague, client


def restricted_seed(n: int, *, queues, policy_version, uploader, colleague, label: str) -> None:  # type: ignore[no-untyped-def]
    """``n`` more videos for ``restricted_world``'s library, titled with ``label``: decided, each with a pending item
    in the open queue, 5 % of them in the restricted queue only, 1 % more routed there before their item was made,
    and five undecided uploads each of ``uploader`` and ``colleague``."""
    from moderation.models import Decision, ModelVersion, ReviewTask, Video
    from tests.moderation.review.seeding import seed_pending_tasks

    open_queue, restricted = queues
    hidden = n // 20
    seed_pending_tasks(n=n - hidden, queue=open_queue, policy_version=policy_version, title=f"Open {label}")
    seed_pending_tasks(n=hidden, queue=restricted, policy_version=policy_version, title=f"Restricted {label}")
    model_version = ModelVersion.objects.get(name="evidence-baseline-v1")
    pending = Video.objects.bulk_create(
        [Video(title=f"Routed {label} {i}", status=Video.Status.READY, routed_restricted=True) for i in range(n // 100)]
    )
    Decision.objects.bulk_create(
        [
            Decision(video=v, policy_version=policy_version, model_version=model_version, backend=model_version.backend)
            for v in pending
        ]
    )
    Video.objects.bulk_create(
        [Video(title=f"Mine {label} {i}", status=Video.Status.READY, created_by=uploader) for i in range(5)]
        + [Video(title=f"Theirs {label} {i}", status=Video.Status.READY, created_by=colleague) for i in range(5)]
    )
    assert ReviewTask.objects.filter(queue=restricted).exists()


def restricted_library(world, sizes: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """Grows ``world``'s library (``restricted_world``) to each ``(label, size)`` in turn, each seeded on top of the
    one before (``restricted_seed``), analysed, its video count printed; yields each once it is there."""
    from django.db import connection

    from moderation.models import Video

    policy_version, open_queue, restricted, moderator, colleague, _client = world
    seeded = 0
    for label, size in sizes:
        t0 = time.perf_counter()
        restricted_seed(
            size - seeded,
            queues=(open_queue, restricted),
            policy_version=policy_version,
            uploader=moderator,
            colleague=colleague,
            label=label,
        )
        seeded = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"{Video.objects.count()} videos seeded in {time.perf_counter() - t0:.1f} s", flush=True)
        yield label, size
