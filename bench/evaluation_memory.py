"""Peak memory of an evaluation run (``evaluation_execute``) of the tiny Llama on a gold set with long transcripts.

The usability walk's case: the DPO job's model (transformers backend, context 4096) on a gold set where some
videos carry long transcripts. Each variant runs in its own process (peak RSS is per process) on a throwaway
test database: ``after`` is the code here, ``before`` the same but with the transformers backend as it was at
``--commit`` (whole prompts, batches padded to their longest item). Prints one line per variant and a JSON line.

    .venv/bin/python bench/evaluation_memory.py [--items 16] [--long 2] [--segments 100] [--new-tokens 32]
        [--variants before,after] [--commit 0e6faea]

Mind the machine: ``before`` grows with the square of the longest prompt (100 segments ≈ 7,000 tokens ≈ 2.5 GB;
300 segments would need tens of GB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, django_setup, module_at  # noqa: E402


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def run_variant(opts: argparse.Namespace) -> dict[str, object]:
    django_setup()
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    if opts.variant == "before":
        sys.modules["moderation.inference.backends.transformers_backend"] = module_at(
            opts.commit, "moderation/inference/backends/transformers_backend.py"
        )
    from moderation.inference.services import model_version_register
    from moderation.labels.models import ItemLabel
    from moderation.media.models import TranscriptSegment, Video
    from moderation.policies.services import policy_version_active
    from tests.factories import PolicyVersionFactory
    from training.evaluation import evaluation_execute, evaluation_start
    from training.tiny_model import ensure_tiny_base_model

    settings.VLM_MAX_NEW_TOKENS = opts.new_tokens
    base_model = ensure_tiny_base_model()
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        PolicyVersionFactory()
        assert policy_version_active() is not None
        for i in range(opts.items):
            video = Video.objects.create(title=f"item {i}", status="ready")
            n = opts.segments if i < opts.long else 3
            TranscriptSegment.objects.bulk_create(
                TranscriptSegment(
                    video=video,
                    index=j,
                    start=2.0 * j,
                    end=2.0 * j + 2,
                    text=f"这个商品效果非常好，加我微信私聊价格 {j}",
                )
                for j in range(n)
            )
            ItemLabel.objects.create(video=video, label="引导私下交易" if i % 2 else "正向", source="review")
        version = model_version_register(name="dpo-job", backend="transformers", base_model=base_model)
        run = evaluation_start(model_version=version, created_by=None)
        rss_start = _rss_mb()
        peak_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        run = evaluation_execute(run_id=run.pk)
        assert run is not None and run.status == "succeeded", run and run.error
        return {
            "variant": opts.variant,
            "items": opts.items,
            "long_items": opts.long,
            "segments": opts.segments,
            "new_tokens": opts.new_tokens,
            "rss_before_run_mb": round(rss_start),
            "peak_before_run_mb": round(peak_start),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_after_run_mb": round(_rss_mb()),
            "prompts_cut": run.metrics.get("prompts_cut", 0),
            "seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        teardown_databases(old_config, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--long", type=int, default=2, help="items with the long transcript")
    parser.add_argument("--segments", type=int, default=100, help="transcript segments of a long item")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--variants", default="before,after")
    parser.add_argument("--commit", default="0e6faea")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.variant:
        print("RESULT " + json.dumps(run_variant(opts)))
        return
    results = []
    for variant in opts.variants.split(","):
        args = [
            *("--items", str(opts.items), "--long", str(opts.long), "--segments", str(opts.segments)),
            *("--new-tokens", str(opts.new_tokens), "--commit", opts.commit),
        ]
        out = subprocess.run(
            [sys.executable, __file__, *args, "--variant", variant], cwd=ROOT, capture_output=True, text=True
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if not lines:
            print(out.stdout[-2000:], out.stderr[-4000:])
            raise SystemExit(f"{variant} failed")
        result = json.loads(lines[-1][len("RESULT ") :])
        print(
            f"{variant:>6}: peak {result['peak_mb']} MB (before the run {result['peak_before_run_mb']} MB, "
            f"after it {result['rss_after_run_mb']} MB), {result['prompts_cut']} prompts cut, {result['seconds']} s"
        )
        results.append(result)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
