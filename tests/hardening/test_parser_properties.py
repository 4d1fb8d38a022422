"""Property-based tests (Hypothesis) of every parser that reads untrusted text: model output (CoT
parsers), KuaiMod and manifest imports, taxonomy validation and platform feedback events.

The property is the same everywhere: whatever the input, the parser answers with a result or its
own readable error (a parse error, a per-line problem, a per-row error), never a crash, and what it
keeps is storable (no NUL, no lone surrogate).
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation.errors import ModerationError
from moderation.inference.cot import (
    BLM_THINK_STAGES,
    KUAIMOD_STAGES,
    CotParseError,
    parse,
    render_blm,
    render_kuaimod,
    text_from_json,
)
from moderation.inference.kuaimod import kuaimod_parse_line, kuaimod_read
from moderation.policies.taxonomy import taxonomy_errors

LABELS = {"正向", "引导私下交易", "色情低俗"}
FAST = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
SLOW = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# Any text, NUL and lone surrogates included, plus the pieces the parsers look for, so that
# generated inputs often come close to the real formats.
pieces = st.sampled_from(
    [
        *[f"[{title}]" for _k, title in KUAIMOD_STAGES],
        *[f"{title}:" for _k, title in BLM_THINK_STAGES],
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "label: 正向",
        "label: 引导私下交易 | confidence: 0.9",
        "confidence: 1e999",
        '{"scene": "x", "violation_type": "正向", "severity": "none"}',
        "[frame:3]",
        "[t=1.5s]",
        "[patch:99999999999]",
        "[" * 50,
        "\x00",
        "\ud800",
        "\n",
    ]
)
hostile_text = st.lists(st.one_of(pieces, st.text(max_size=40)), max_size=25).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)


@FAST
@given(text=hostile_text, fmt=st.sampled_from(["kuaimod", "blm"]))
def test_cot_parsers_answer_a_result_or_a_parse_error(text: str, fmt: str) -> None:
    try:
        parsed = parse(text, fmt, LABELS, scenes={"x"})
    except CotParseError:
        return
    assert parsed.label in LABELS
    assert all(isinstance(stage["text"], str) for stage in parsed.stages)


@FAST
@given(data=json_values, fmt=st.sampled_from(["kuaimod", "blm"]))
def test_guided_json_output_becomes_text_or_a_parse_error(data: Any, fmt: str) -> None:
    raw = json.dumps(data)
    try:
        text = text_from_json(raw, fmt)
    except CotParseError:
        return
    with contextlib.suppress(CotParseError):
        parse(text, fmt, LABELS)


@FAST
@given(
    stages=st.dictionaries(st.sampled_from([k for k, _t in KUAIMOD_STAGES]), hostile_text),
    label=st.sampled_from(sorted(LABELS)),
)
def test_rendered_kuaimod_output_parses_back_to_its_label(stages: dict[str, str], label: str) -> None:
    """Whatever a labeler writes in the stages, the CoT we render parses back (or is refused) — never a crash,
    and a parse that succeeds returns the label we rendered unless the text itself forged a verdict."""
    try:
        parsed = parse(render_kuaimod(stages, label), "kuaimod", LABELS)
    except CotParseError:
        return
    assert parsed.label in LABELS


@FAST
@given(scene=hostile_text, violation=hostile_text, severity=hostile_text)
def test_rendered_blm_output_with_hostile_fields_never_crashes(scene: str, violation: str, severity: str) -> None:
    with contextlib.suppress(CotParseError):
        parse(render_blm({}, scene, violation, severity), "blm", LABELS, scenes={"x"})


@FAST
@given(
    line=st.one_of(
        hostile_text,
        json_values.map(json.dumps),
        st.builds(
            lambda d: json.dumps({"pid": "1", "tag": "正向", **d}),
            st.dictionaries(st.sampled_from(["title", "OCR", "ASR", "images", "pid", "tag"]), json_values),
        ),
    )
)
def test_kuaimod_lines_are_a_record_or_a_readable_problem(line: str) -> None:
    try:
        record = kuaimod_parse_line(line, line=1)
    except ValueError as exc:
        assert str(exc)
        return
    for value in (record.pid, record.tag, record.title, record.ocr, record.asr):
        assert not UNSTORABLE.search(value)
    assert 0 <= record.frames <= 32767


@SLOW
@given(lines=st.lists(st.one_of(hostile_text, json_values.map(json.dumps)), max_size=8))
def test_kuaimod_files_report_every_bad_line_and_never_raise(tmp_path_factory: Any, lines: list[str]) -> None:
    path = Path(tmp_path_factory.mktemp("km")) / "f.jsonl"
    path.write_text("\n".join(line.replace("\n", " ") for line in lines), encoding="utf-8", errors="surrogatepass")
    result = kuaimod_read(path, labels=sorted(LABELS))
    assert all(p.line >= 1 and p.reason for p in result.problems)
    for record in result.records:
        assert not UNSTORABLE.search(record.title + record.ocr + record.asr + record.pid + record.tag)


@FAST
@given(taxonomy=json_values, fmt=st.sampled_from(["kuaimod", "blm"]))
def test_taxonomy_validation_lists_problems_for_any_json(taxonomy: Any, fmt: str) -> None:
    errors = taxonomy_errors(taxonomy, safe_label="正向", output_format=fmt)
    assert isinstance(errors, list) and all(isinstance(e, str) and e for e in errors)
    if not isinstance(taxonomy, list):
        assert errors


@pytest.mark.django_db
def test_feedback_events_of_any_shape_are_accepted_or_reported_row_by_row() -> None:
    from moderation.feedback.services import feedback_events_ingest
    from moderation.integrations.services import integration_create
    from tests.factories import VideoFactory

    integration, _token = integration_create(name="hypothesis")
    video = VideoFactory(external_id="ext-h")
    row_fields = st.fixed_dictionaries(
        {},
        optional={
            "event_id": st.one_of(st.text(max_size=300), st.integers(), json_values),
            "type": st.one_of(
                st.sampled_from(["report", "like", "watch_time", "appeal", "share", "dislike"]), json_values
            ),
            "video_id": st.one_of(st.just(video.pk), st.just(str(video.pk)), json_values),
            "video_external_id": st.one_of(st.just("ext-h"), json_values),
            "timestamp": st.one_of(st.just("2026-05-01T12:00:00Z"), st.integers(), json_values),
            "reason": st.one_of(st.text(max_size=600), json_values),
            "seconds": json_values,
            "appeal_id": json_values,
            "outcome": json_values,
        },
    )

    @SLOW
    @given(events=st.one_of(st.lists(st.one_of(row_fields, json_values), max_size=6), json_values))
    def check(events: Any) -> None:
        try:
            result = feedback_events_ingest(integration=integration, events=events)
        except ModerationError as exc:
            assert not isinstance(events, list) or len(events) > 1000, exc
            return
        assert result.accepted + result.duplicates + len(result.errors) == len(events)
        assert all(e["error"] for e in result.errors)

    check()


@pytest.mark.django_db
def test_manifest_lines_of_any_shape_are_imported_or_reported(tmp_path: Path, settings: Any) -> None:
    from moderation.media.ingest import video_import_manifest

    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    counter = iter(range(10**6))

    @SLOW
    @given(
        lines=st.lists(
            st.one_of(
                hostile_text,
                json_values.map(json.dumps),
                st.builds(
                    lambda d: json.dumps({"id": "x", **d}),
                    st.dictionaries(st.sampled_from(["video", "title", "comments", "cover", "id"]), json_values),
                ),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def check(lines: list[str]) -> None:
        path = tmp_path / f"m{next(counter)}.jsonl"
        path.write_text("\n".join(line.replace("\n", " ") for line in lines), encoding="utf-8", errors="surrogatepass")
        report = video_import_manifest(manifest=path)
        with path.open(encoding="utf-8", errors="replace") as fh:  # the lines as the importer reads them
            written = [line for line in fh if line.strip()]
        assert len(report.created) + len(report.existing) + len(report.errors) == len(written)

    check()


tag_answer_pieces = st.sampled_from(
    ['{"tags": [', "]}", '"火锅"', '"', ",", "```json\n", "```", "Tags:", "标签：", "、", "[" * 40, "\x00", "\ud800"]
)


@FAST
@given(
    text=st.lists(st.one_of(tag_answer_pieces, st.text(max_size=30)), max_size=25).map("".join),
    data=json_values,
)
def test_vlm_tag_answers_are_tags_or_a_reason(text: str, data: Any) -> None:
    """A VLM's free-text tag answer (moderation.tagging.vlm): a list of clean, short, storable phrases or
    an empty list with a reason — for any text and for any JSON the model could be guided into."""
    from moderation.tagging.text import tag_name_problem
    from moderation.tagging.vlm import MAX_PHRASE_CHARS, MAX_TAGS, parse_tags

    for answer in (text, json.dumps({"tags": data}, ensure_ascii=False)):
        parsed = parse_tags(answer)
        assert parsed.names or parsed.error
        assert len(parsed.names) <= MAX_TAGS
        for name in parsed.names:
            assert 0 < len(name) <= MAX_PHRASE_CHARS and tag_name_problem(name) is None
            assert not UNSTORABLE.search(name)
