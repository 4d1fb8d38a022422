"""`manage.py evaluate_tags --train FILE --test FILE [--k 5]` (or `--train FILE --cv K`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.files import operator_file_open


class Command(BaseCommand):
    help = (
        "Train the tag sources and ranker on --train (JSONL: title, OCR, ASR with '|'-joined segments, tags) and "
        "score --test, or cross-validate --train with --cv K. Prints a table, then one JSON line with precision@k, "
        "recall@k, GAP@20, n, and the same per source. Uses the imported vocabulary (manage.py import_tags)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--train", type=Path, required=True)
        parser.add_argument("--test", type=Path)
        parser.add_argument("--cv", type=int, help="k-fold cross-validation on --train instead of --test")
        parser.add_argument("--k", type=int, default=5)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--tags-file", type=Path, help="JSONL of {pid, tags} joined to the records by pid (e.g. videotag's)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from moderation.tagging import encoder, evaluation, ranking
        from moderation.tagging.services import _vocabulary_in_memory, tags_embed_missing

        if (opts["test"] is None) == (opts["cv"] is None):
            raise CommandError("Give either --test FILE or --cv K.")
        if opts["k"] < 1 or (opts["cv"] is not None and opts["cv"] < 2):
            raise CommandError("--k must be at least 1 and --cv at least 2.")
        try:
            embedded = tags_embed_missing()
            if embedded:
                self.stderr.write(f"computed {embedded} missing tag embeddings")
            vocab = _vocabulary_in_memory()
            if not vocab.tag_ids:
                raise ModerationError("The vocabulary is empty: import one first (manage.py import_tags FILE).")
            vocab.prior = {}
            tags_by_pid = self._tags_by_pid(opts["tags_file"]) if opts["tags_file"] else None
            train = self._load(opts["train"], vocab, tags_by_pid)
            test = self._load(opts["test"], vocab, tags_by_pid) if opts["test"] else None
            records = train.records + (test.records if test else [])
            if not train.records or (test is not None and not test.records):
                raise ModerationError("No tagged records to train or test on.")
            evaluation.embed_records(records, encoder.encode, hashtags=ranking.APP_OPTIONS.reads_hashtags)
            if test is not None:
                scored = evaluation.run(
                    train.records, test.records, vocab, seed=opts["seed"], options=ranking.APP_OPTIONS
                )
                mode = f"train {len(train.records)} → test {len(test.records)}"
            else:
                scored = evaluation.cross_validate(
                    train.records, vocab, folds=opts["cv"], seed=opts["seed"], options=ranking.APP_OPTIONS
                )
                mode = f"{opts['cv']}-fold cross-validation, seed {opts['seed']}"
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        result = evaluation.metrics(scored, opts["k"])
        k = opts["k"]
        self.stdout.write(f"Tag ranking ({mode}; records with at least one known tag)")
        self.stdout.write(f"{'source':<12} {'P@' + str(k):>8} {'R@' + str(k):>8} {'GAP@20':>8}")
        rows = [("ranker", result), *result["per_source"].items()]
        for name, m in rows:
            self.stdout.write(
                f"{name:<12} {m[f'precision_at_{k}']:>8.3f} {m[f'recall_at_{k}']:>8.3f} {m['gap_at_20']:>8.3f}"
            )
        self.stdout.write(json.dumps(result, ensure_ascii=False))

    def _load(self, path: Path, vocab: Any, tags_by_pid: dict[str, list[str]] | None) -> Any:
        from moderation.tagging import evaluation

        report = evaluation.load_records(path, vocab, tags_by_pid=tags_by_pid)
        for problem in report.problems:
            self.stderr.write(f"{path.name}: {problem}")
        if report.unknown_tags:
            names = ", ".join(f"{n} ({c})" for n, c in report.unknown_tags.most_common())
            self.stderr.write(f"{path.name}: tag names not in the vocabulary (left out of the gold tags): {names}")
        if report.skipped_untagged:
            self.stderr.write(f"{path.name}: {report.skipped_untagged} records without a known tag skipped")
        return report

    @staticmethod
    def _tags_by_pid(path: Path) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        try:
            with operator_file_open(path) as fh:  # a regular file only: a FIFO was waited on for ever
                lines = fh.read().decode("utf-8").splitlines()
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text (byte {exc.start}): give the JSONL file itself.") from exc
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("tags"), list):
                out[str(obj.get("pid"))] = [str(t) for t in obj["tags"]]
        return out
