"""The pipeline's shared rules, checked on its source: every stage finishes through ``_finish_stage`` inside
``_stage_lock``, and OCR rows have one writer. (The stages' behaviour is tested end to end elsewhere.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ROOT / "moderation" / "media" / "pipeline.py"


def _calls(node: ast.AST) -> list[str]:
    return [
        n.func.id if isinstance(n.func, ast.Name) else n.func.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
    ]


def test_every_stage_finishes_through_the_shared_helpers() -> None:
    tree = ast.parse(PIPELINE.read_text(encoding="utf-8"))
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    # the stages are the functions the driver runs
    run = {n.id for n in ast.walk(functions["_run_stages"]) if isinstance(n, ast.Name) and n.id.startswith("_stage_")}
    stages = [functions[name] for name in sorted(run - {"_stage_done"})]
    assert len(stages) == 7
    for stage in stages:
        locked = [
            w for w in ast.walk(stage) if isinstance(w, ast.With) and "_stage_lock" in _calls(w.items[0].context_expr)
        ]
        assert any("_finish_stage" in _calls(w) for w in locked), f"{stage.name} must finish inside _stage_lock"
        assert "select_for_update" not in _calls(stage), f"{stage.name} locks the row itself"
        assert "atomic" not in _calls(stage), f"{stage.name} opens its own transaction"


def test_ocr_rows_have_one_writer() -> None:
    writers = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "moderation").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "OcrBox.objects.bulk_create" in line or "OcrBox.objects.create" in line
    ]
    assert len(writers) == 1 and writers[0].startswith("moderation/media/pipeline.py:"), writers
    tree = ast.parse(PIPELINE.read_text(encoding="utf-8"))
    owner = [
        f.name
        for f in tree.body
        if isinstance(f, ast.FunctionDef) and "bulk_create" in _calls(f) and "OcrBox" in ast.unparse(f)
    ]
    assert owner == ["_store_ocr"]
