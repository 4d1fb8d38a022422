"""Taxonomy validation and the structural diff (pure functions, no database)."""

from __future__ import annotations

import copy

import pytest

from moderation.policies.seed import SAFE_LABEL, blm_guard_taxonomy, kuaimod_taxonomy
from moderation.policies.taxonomy import taxonomy_diff, taxonomy_errors


def _tag(taxonomy, key):  # type: ignore[no-untyped-def]
    return next(t for c in taxonomy for t in c["tags"] if t["key"] == key)


@pytest.mark.parametrize(
    ("taxonomy", "output_format"), [(kuaimod_taxonomy(), "kuaimod"), (blm_guard_taxonomy(), "blm")]
)
def test_both_seed_taxonomies_validate(taxonomy, output_format):
    assert taxonomy_errors(taxonomy, safe_label=SAFE_LABEL, output_format=output_format) == []


def test_blm_seed_has_three_levels_with_english_names():
    taxonomy = blm_guard_taxonomy()
    assert [c["name"] for c in taxonomy] == ["False advertising", "Inducement to trade", "Vulgar borderline content"]
    for scene in taxonomy:
        assert len(scene["tags"]) >= 2
        for violation in scene["tags"]:
            assert violation["severities"] and set(violation["severities"]) <= {"low", "medium", "high"}
            assert violation["criteria"] and violation["keywords"]
            assert violation["name"].isascii()


def test_validation_lists_every_problem_with_where_it_is():
    bad = [
        {
            "key": "A",
            "name": "",
            "tags": [
                {"key": "t1", "name": "One", "keywords": ["x", 3]},
                {"key": "t1", "name": "Dup", "keywords": "not a list"},
            ],
        },
        {
            "key": "A",
            "name": "Again",
            "tags": [
                {"key": SAFE_LABEL, "name": "Safe?", "keywords": []},
                {"key": "t3", "name": "Sev", "keywords": [], "severities": ["low", "extreme"], "keyword": ["typo"]},
                {"key": " ", "name": "No key", "keywords": ["ok", "OK"]},
            ],
        },
        {"key": "B", "name": "Empty", "tags": []},
    ]
    errors = taxonomy_errors(bad, safe_label=SAFE_LABEL)
    text = "\n".join(errors)
    assert "Category 1 (A): name must not be empty." in errors
    assert "Category 1 (A), tag 1 (t1): every entry of keywords must be a non-empty string (got 3)." in errors
    assert "key 't1' is already used by Category 1 (A), tag 1 (t1)" in text
    assert "Category 1 (A), tag 2 (t1): keywords must be a list of strings." in errors
    assert "Category 2 (A): key 'A' is used by another category." in errors
    assert f"key '{SAFE_LABEL}' is the non-violative label" in text
    assert "unknown severity 'extreme'" in text
    assert "unknown field(s) keyword" in text
    assert "Category 2 (A), tag 3: key must not be empty." in errors
    assert "keywords repeats 'OK'" in text
    assert "Category 3 (B): needs a list of at least one tag." in errors


def test_blm_policies_need_severities_kuaimod_ones_do_not():
    taxonomy = kuaimod_taxonomy()
    assert taxonomy_errors(taxonomy, safe_label=SAFE_LABEL, output_format="kuaimod") == []
    errors = taxonomy_errors(taxonomy, safe_label=SAFE_LABEL, output_format="blm")
    assert len(errors) == sum(len(c["tags"]) for c in taxonomy)
    assert all("severities" in e for e in errors)


@pytest.mark.parametrize("value", [None, {}, [], "text", [1]])
def test_wrong_top_level_shapes_are_errors_not_crashes(value):
    assert taxonomy_errors(value, safe_label=SAFE_LABEL)


def test_diff_finds_keyword_rename_removal_criteria_and_severity_changes():
    a = blm_guard_taxonomy()
    b = copy.deepcopy(a)
    _tag(b, "夸大功效")["keywords"].append("magic beans")
    _tag(b, "夸大功效")["keywords"].remove("miracle")
    _tag(b, "站外引流")["name"] = "Traffic diversion off the platform"
    _tag(b, "私下交易")["criteria"] = ["Any request to pay outside checkout."]
    _tag(b, "低俗言语")["severities"] = ["low", "medium", "high"]
    b[2]["tags"] = [t for t in b[2]["tags"] if t["key"] != "软色情引流"]
    b[0]["name"] = "Misleading advertising"
    b.append({"key": "新场景", "name": "New scene", "tags": [{"key": "新类型", "name": "New type", "keywords": ["k"]}]})

    changes = {(c.kind, c.tag or c.category): c for c in taxonomy_diff(a, b)}
    assert changes[("keywords_added", "夸大功效")].items == ("magic beans",)
    assert changes[("keywords_removed", "夸大功效")].items == ("miracle",)
    renamed = changes[("tag_renamed", "站外引流")]
    assert (renamed.before, renamed.after) == ("Off-platform traffic diversion", "Traffic diversion off the platform")
    assert changes[("tag_removed", "软色情引流")].before == "Soft-porn traffic bait"
    assert changes[("criteria_added", "私下交易")].items == ("Any request to pay outside checkout.",)
    assert len(changes[("criteria_removed", "私下交易")].items) == 2
    assert (changes[("severities_changed", "低俗言语")].before, changes[("severities_changed", "低俗言语")].after) == (
        "low, medium",
        "low, medium, high",
    )
    assert changes[("category_renamed", "虚假宣传")].after == "Misleading advertising"
    assert ("category_added", "新场景") in changes and ("tag_added", "新类型") in changes
    assert len(changes) == 10  # nothing else is reported
    assert taxonomy_diff(a, copy.deepcopy(a)) == []
    # Each change carries the English names of its keys (the newer taxonomy's; a removed tag's from the older).
    added = changes[("keywords_added", "夸大功效")]
    assert (added.category_name, added.tag_name) == (b[0]["name"], _tag(b, "夸大功效")["name"])
    assert changes[("tag_removed", "软色情引流")].tag_name == "Soft-porn traffic bait"
    assert changes[("tag_renamed", "站外引流")].tag_name == "Traffic diversion off the platform"


def test_a_changed_key_is_a_removal_plus_an_addition():
    a = kuaimod_taxonomy()
    b = copy.deepcopy(a)
    b[0]["tags"][0]["key"] = "违法"
    kinds = sorted(c.kind for c in taxonomy_diff(a, b))
    assert kinds == ["tag_added", "tag_removed"]


def test_a_keyword_typed_three_times_is_one_problem_said_once():
    """Walked at 1440x900 (hwalk15): two keywords appended three times (an unsent edit put back, then typed again)
    were listed as four problems, each keyword twice, in the list above the editor and again beside the field."""
    taxonomy = kuaimod_taxonomy()
    taxonomy[0]["tags"][0]["keywords"] += ["加V", "私下转账", "加V", "私下转账", "加v", "私下转账"]
    errors = taxonomy_errors(taxonomy, safe_label=SAFE_LABEL)
    where = f"Category 1 ({taxonomy[0]['key']}), tag 1 ({taxonomy[0]['tags'][0]['key']})"
    assert errors == [f"{where}: keywords repeats '加V' (3 times).", f"{where}: keywords repeats '私下转账' (3 times)."]
    taxonomy[0]["tags"][0]["keywords"] = ["a", "b", "a"]
    assert taxonomy_errors(taxonomy, safe_label=SAFE_LABEL) == [f"{where}: keywords repeats 'a'."]
