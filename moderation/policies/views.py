"""Policy pages: everyone signed in reads policies, versions and diffs; editors draft, preview and publish."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache

from moderation.errors import ModerationError
from moderation.policies import selectors, services
from moderation.policies.editor import (
    editor_apply_action,
    editor_mark_problems,
    editor_name_rows,
    editor_rows_from_post,
    editor_rows_from_taxonomy,
    editor_taxonomy_from_rows,
)
from moderation.policies.models import Policy, PolicyVersion
from moderation.policies.taxonomy import SEVERITIES
from workbench.form_routes import post_only
from workbench.roles import Perm, login_required, permission_required
from workbench.text import row_id


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@login_required
def policy_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "moderation/policies/policy_list.html",
        {"policies": selectors.policy_list(), "can_edit": request.user.has_perm(Perm.EDIT_POLICY)},
    )


# Never cached (``Cache-Control: no-store``), as the review screen: Back after publishing a draft showed the cached
# draft page ("Draft", "Publish and make active…") of a version already active.
@never_cache
@login_required
def policy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    policy, active, versions = selectors.policy_detail(policy_id=pk)
    # After a refused model choice the page comes back with the choice in the query: the dropdown keeps it
    # (it fell back to the model serving the policy, and the user had to find their choice again).
    chosen = request.GET.get("model_version", "")
    return render(
        request,
        "moderation/policies/policy_detail.html",
        {
            "policy": policy,
            "active": active,
            "versions": versions,
            "rows": selectors.policy_taxonomy_rows(version=active) if active else [],
            "can_edit": request.user.has_perm(Perm.EDIT_POLICY),
            "can_repair": request.user.has_perm(Perm.MANAGE_INTEGRATIONS),  # the ops page's repairs
            # ``row_id``: "²" passed ``str.isdigit()`` and ``int()`` refused it (a 500).
            "model_choice": row_id(chosen) or policy.serving_model_id,
            "stale_ids": selectors.policy_stale_draft_ids(versions=versions),
            "diff_a": versions[1] if len(versions) > 1 else None,
            "diff_b": versions[0] if versions else None,
        },
    )


CONFIRM_STEPS = ("publish", "activate")


@never_cache  # as policy_detail: Back after a publish or re-activation loads the version's state now
@login_required
def policy_version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A version; for a draft whose starting point is no longer active, what publishing it would replace.

    ``?confirm=publish`` (a draft) and ``?confirm=activate`` (an earlier published version) are the confirm
    steps of making it the active version: a form naming the version it replaces, no JavaScript needed.
    """
    version = selectors.policy_version_get(version_id=pk)
    return _version_page(request, version, confirm=request.GET.get("confirm", ""))


def _version_page(
    request: HttpRequest,
    version: PolicyVersion,
    *,
    confirm: str,
    refused: str = "",
    reason: str = "",
    note_refused: str = "",
    notes: str = "",
) -> HttpResponse:
    """``refused`` and ``reason``: a confirmed publish or re-activation refused because another version became
    active meanwhile shows the confirm step again, for the version active now, with the reason as typed."""
    active = selectors.policy_version_active(policy_id=version.policy_id)
    stale = selectors.policy_draft_staleness(draft=version, active=active)
    since = selectors.policy_version_changes_from_base(version=version)
    can_edit = request.user.has_perm(Perm.EDIT_POLICY)
    draft = version.status == PolicyVersion.Status.DRAFT
    if not can_edit or confirm not in CONFIRM_STEPS or version.is_active or (confirm == "publish") != draft:
        confirm = ""  # a step that does not apply to this version (or this user) is no step
    return render(
        request,
        "moderation/policies/policy_version.html",
        {
            "policy": version.policy,
            "version": version,
            "rows": selectors.policy_taxonomy_rows_marked(version=version, since=since),
            "since": since,
            "can_edit": can_edit,
            "default_sample": selectors.DEFAULT_IMPACT_SAMPLE,
            "stale": stale,
            "active": active,
            "confirming": confirm,
            "publish_refused": refused if confirm else "",
            "typed_reason": reason if confirm else "",
            "note_refused": note_refused if confirm else "",
            "typed_notes": notes if confirm else "",
        },
        status=400 if (refused or note_refused) and confirm else 200,
    )


def _to_confirm_step(version: PolicyVersion, step: str) -> HttpResponse:
    """A publish or re-activation sent without its confirm step (a page or a script from before the step
    existed): nothing changes; the version's page opens on the step, which names what it replaces."""
    url = reverse("moderation:policy_version", args=[version.pk])
    return HttpResponseRedirect(f"{url}?{urlencode({'confirm': step})}")


@login_required
def policy_diff(request: HttpRequest, pk: int) -> HttpResponse:
    """Two versions' changes (``?a=`` from, ``?b=`` to; the two newest by default). A value that names no
    version of this policy is said on the page, with the default pair shown and the picker to choose again
    (a typed ``?a=abc`` was dropped silently, an unknown id was a bare "not found" page). A policy with one version
    gets a page that says there is nothing to compare yet."""
    policy, _active, versions = selectors.policy_detail(policy_id=pk)
    if len(versions) < 2:
        # A page that says so, with the way back (it was the bare "not found" page, as if the link were broken);
        # whatever ``?a=``/``?b=`` asked for, there is no second version to compare with.
        only: dict[str, Any] = {"policy": policy, "only": versions[0] if versions else None}
        only["can_edit"] = request.user.has_perm(Perm.EDIT_POLICY)
        template = "moderation/policies/policy_diff.html"
        return render(request, f"{template}#nothing-to-compare" if request.htmx else template, only)  # type: ignore[attr-defined]
    by_pk = {v.pk: v for v in versions}
    picked: dict[str, PolicyVersion] = {}
    problems: list[str] = []
    status = 200
    for key, side in (("a", "From"), ("b", "To")):
        raw = request.GET.get(key, "").strip()
        if not raw:
            continue
        version_id = row_id(raw)
        version = by_pk.get(version_id) if version_id is not None else None
        if version is not None:
            picked[key] = version
        elif version_id is None:
            problems.append(f"{side} ({key}={raw[:40]}): not a version id (a number).")
            status = max(status, 400)
        else:
            problems.append(f"{side} ({key}={version_id}): no version {version_id} of this policy.")
            status = 404
    a, b = picked.get("a", versions[1]), picked.get("b", versions[0])
    context = {
        "policy": policy,
        "versions": versions,
        "a": a,
        "b": b,
        "changes": selectors.policy_diff(a, b),
        "problems": problems,
    }
    if request.htmx:  # type: ignore[attr-defined]
        # htmx swaps a 200 only: the picker's request gets the message in place of the diff.
        return render(request, "moderation/policies/policy_diff.html#diff", context)
    return render(request, "moderation/policies/policy_diff.html", context, status=status)


@permission_required(Perm.EDIT_POLICY)
def policy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a version's taxonomy (the active one unless ``?from=``) and save it as a new draft."""
    policy = get_object_or_404(Policy, pk=pk)
    base_id = _int(request.POST.get("base") or request.GET.get("from"))
    bases = policy.versions.order_by("-is_active", "-number")
    base = get_object_or_404(bases, pk=base_id) if base_id else bases.first()
    output_format = base.output_format if base else PolicyVersion.OutputFormat.KUAIMOD
    taxonomy: Any = base.taxonomy if base else []
    rows = editor_rows_from_taxonomy(taxonomy)
    json_text = json.dumps(taxonomy, ensure_ascii=False, indent=2)
    notes, mode, errors, status = "", "structured", [], 200
    fields_marked = False

    if request.method == "POST":
        notes = request.POST.get("notes", "")
        mode = "json" if request.POST.get("mode") == "json" else "structured"
        if mode == "json":
            json_text = request.POST.get("taxonomy_json", "")
            try:
                taxonomy = json.loads(json_text)
            except json.JSONDecodeError as exc:
                errors = [f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."]
            except (ValueError, RecursionError):  # nesting too deep, or a number too long to read
                errors = ["Not valid JSON for a taxonomy: it is nested too deeply or holds a number too long to read."]
        else:
            rows = editor_rows_from_post(request.POST)
            if editor_apply_action(rows, request.POST.get("action", "save")):
                return _render_editor(request, policy, base, rows, json_text, notes, mode, [], 200)
            taxonomy = editor_taxonomy_from_rows(rows, output_format=output_format)
        if not errors:
            try:
                version = services.policy_version_create_draft(
                    policy=policy,
                    taxonomy=taxonomy,
                    by=request.user,
                    notes=notes,
                    refuse_unchanged=True,
                    based_on=base,
                )
            except services.PolicyValidationError as exc:
                errors = exc.errors
                if mode == "structured":
                    base_rows = editor_rows_from_taxonomy(base.taxonomy if base else [])
                    fields_marked = editor_mark_problems(rows, exc.problems, base_rows=base_rows)
            except ModerationError as exc:
                errors = [str(exc)]
            else:
                messages.success(request, f"Saved as draft v{version.number}; preview its impact, then publish it.")
                return redirect("moderation:policy_version", pk=version.pk)
        status = 400
    return _render_editor(request, policy, base, rows, json_text, notes, mode, errors, status, fields_marked)


def _render_editor(
    request: HttpRequest,
    policy: Policy,
    base: PolicyVersion | None,
    rows: list[Any],
    json_text: str,
    notes: str,
    mode: str,
    errors: list[str],
    status: int,
    fields_marked: bool = False,
) -> HttpResponse:
    context = {
        "policy": policy,
        "base": base,
        "behind": selectors.policy_start_behind_active(start=base),
        "rows": editor_name_rows(rows, blm=base is not None and base.output_format == "blm"),
        "json_text": json_text,
        "notes": notes,
        "mode": mode,
        "errors": errors,
        "fields_marked": fields_marked,
        "severities": SEVERITIES,
    }
    return render(request, "moderation/policies/policy_edit.html", context, status=status)


@post_only
@permission_required(Perm.EDIT_POLICY)
def policy_version_publish(request: HttpRequest, pk: int) -> HttpResponse:
    """Publish a draft from its confirm step: ``confirm=publish``, and ``replaces`` (the number of the active
    version the editor agreed to replace) whenever a version is active; a stale draft's step may carry a
    ``reason``. A publish without the step publishes nothing and opens the step."""
    version = get_object_or_404(PolicyVersion, pk=pk)
    replaces, reason = _int(request.POST.get("replaces")), request.POST.get("reason", "")
    notes = request.POST.get("notes", "")
    if request.POST.get("confirm") != "publish" and replaces is None:
        return _to_confirm_step(version, "publish")
    try:
        services.policy_version_publish(version=version, by=request.user, replaces=replaces, reason=reason, notes=notes)
    except services.PublishNoteMissingError as exc:  # the step again, the message on its note field
        return _version_page(request, version, confirm="publish", note_refused=str(exc), reason=reason[:1000])
    except services.StalePublishError as exc:  # the confirm step again, with what was typed
        return _version_page(
            request, version, confirm="publish", refused=str(exc), reason=reason[:1000], notes=notes[:5000]
        )
    except ModerationError as exc:
        messages.error(request, str(exc))
        return redirect("moderation:policy_version", pk=pk)
    messages.success(request, f"v{version.number} is published and active; new decisions use it from now on.")
    return redirect("moderation:policy_detail", pk=version.policy_id)


@post_only
@permission_required(Perm.EDIT_POLICY)
def policy_version_activate(request: HttpRequest, pk: int) -> HttpResponse:
    """Make an earlier published version active again from its confirm step (``confirm=activate``, and
    ``replaces``: the active version it named). When another version became active meanwhile, the step is shown
    again for the version active now, with the reason."""
    version = get_object_or_404(PolicyVersion, pk=pk)
    if request.POST.get("confirm") != "activate":
        return _to_confirm_step(version, "activate")
    replaces = _int(request.POST.get("replaces"))
    try:
        version = services.policy_version_activate(version=version, by=request.user, replaces=replaces)
    except services.StaleActivationError as exc:
        return _version_page(request, version, confirm="activate", refused=str(exc))
    except ModerationError as exc:
        messages.error(request, str(exc))
        return redirect("moderation:policy_version", pk=pk)
    messages.success(request, f"v{version.number} is active again; new decisions use it from now on.")
    return redirect("moderation:policy_detail", pk=version.policy_id)
