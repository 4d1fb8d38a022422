"""Runs ``manage.py generate_repro_eval`` on a throwaway test database (nothing lands in var/).

    .venv/bin/python bench/repro_eval.py [--teacher-model PATH] [any generate_repro_eval option]

With ``--tiny-teacher`` a tiny random LLaVA is built (tests/tiny_models.py) to time the teacher's
plumbing on this CPU; real teacher cost needs a real VLM on a GPU. The last line is one JSON object.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# The helpers beside it, also when imported as ``bench.repro_eval``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402


def main() -> None:
    django_setup()
    from django.core.management import call_command
    from django.test.utils import setup_databases, teardown_databases

    argv = sys.argv[1:]
    if "--tiny-teacher" in argv:
        argv.remove("--tiny-teacher")
        from tests.tiny_models import build_tiny_llava

        argv += ["--teacher-model", str(build_tiny_llava(Path(tempfile.mkdtemp(prefix="tiny-llava-"))))]
    out = tempfile.mkdtemp(prefix="repro-eval-")
    config = setup_databases(verbosity=0, interactive=False)
    try:
        call_command("generate_repro_eval", "--out", out, "--json", *argv)
    finally:
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    main()
