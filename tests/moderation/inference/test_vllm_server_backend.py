"""The vllm backend's server mode against a local OpenAI-compatible endpoint.

vLLM itself only runs on GPU nodes; here a small HTTP server on 127.0.0.1 stands in for
`vllm serve` so the request we send (guided JSON schema, images, model name) and the way the
answer becomes a parsed CoT are checked for real.
"""

from __future__ import annotations

import json

import pytest

from moderation.inference.backends import ContentBundle, Frame, Segment
from moderation.inference.backends.vllm_backend import VllmServerBackend
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy
from moderation.policies.spec import PolicySpec
from tests.vllm_stub import vllm_stub


@pytest.fixture
def openai_server():  # type: ignore[no-untyped-def]
    with vllm_stub(prompt_tokens=812, completion_tokens=95) as stub:
        yield stub.url, stub, stub.answers


def _content(tmp_path) -> ContentBundle:  # type: ignore[no-untyped-def]
    from PIL import Image

    frame = tmp_path / "k.jpg"
    Image.new("RGB", (32, 32), (10, 200, 10)).save(frame)
    return ContentBundle(
        title="phones",
        description="",
        uploader="",
        segments=[Segment(3, 1.0, 2.0, "add me on wechat")],
        frames=[Frame(9, 1.0, True)],
        image_paths=[str(frame)],
    )


def test_guided_json_answer_becomes_a_parsed_five_stage_cot(openai_server, tmp_path, settings):
    url, seen, answers = openai_server
    answers.append(
        json.dumps(
            {
                "content_extraction": "A phone seller [frame:9]",
                "analysis": "asks for WeChat [t=1.0s]",
                "intermediate_check": "consistent",
                "user_feedback": "none",
                "label": "引导私下交易",
                "confidence": 0.9,
            },
            ensure_ascii=False,
        )
    )
    backend = VllmServerBackend(url, "Qwen/Qwen2.5-VL-7B-Instruct")
    [result] = backend.decide_batch([_content(tmp_path)], PolicySpec(kuaimod_taxonomy(), SAFE_LABEL))

    assert result.label == "引导私下交易" and result.is_violation and result.confidence == pytest.approx(0.9)
    assert result.cot[0]["evidence"] == [{"kind": "frame", "ref": 9, "label": "frame 9"}]
    assert (result.prompt_tokens, result.completion_tokens) == (812, 95)
    assert seen.paths[0] == "/v1/chat/completions"
    request = {"body": seen.bodies[0]}
    schema = request["body"]["response_format"]["json_schema"]["schema"]
    assert "引导私下交易" in schema["properties"]["label"]["enum"]
    user_content = request["body"]["messages"][1]["content"]
    assert user_content[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_invalid_answer_is_kept_raw_with_the_parse_error(openai_server, tmp_path):
    url, _, answers = openai_server
    answers.append("sorry, I cannot help with that")
    [result] = VllmServerBackend(url, "m").decide_batch(
        [_content(tmp_path)], PolicySpec(kuaimod_taxonomy(), SAFE_LABEL)
    )
    assert result.label == "" and "not valid JSON" in result.parse_error
    assert result.raw_output == "sorry, I cannot help with that"


def test_unreachable_server_raises_a_clear_error(tmp_path):
    backend = VllmServerBackend("http://127.0.0.1:9", "m", timeout=2)
    with pytest.raises(RuntimeError, match="vLLM server at http://127.0.0.1:9"):
        backend.decide_batch([_content(tmp_path)], PolicySpec(kuaimod_taxonomy(), SAFE_LABEL))
