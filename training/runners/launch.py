"""Entry point of each process ``accelerate launch`` starts for a job: ``python -m training.runners.launch JOB_ID``."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    import django

    django.setup()
    from training.runners.common import run_job

    run_job(int(sys.argv[1]))


if __name__ == "__main__":
    main()
