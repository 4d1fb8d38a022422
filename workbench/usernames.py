"""Usernames that read as another: "аdmin" with a Cyrillic "а", "Аdmin", "ΑDMIN" (Greek) were taken beside "admin".

The audit trail, the claim holder ("held by admin") and the role header name users by username, so a look-alike
passes for another user on every screen. One validator on ``User.username`` (installed in ``WorkbenchConfig.ready``)
refuses, wherever a user is made or renamed (the admin's user forms, ``createsuperuser``, ``full_clean``):

- a name mixing Latin letters with Cyrillic or Greek ones (no real name needs both; look-alikes do);
- a name whose skeleton (NFKC, case folded, the Cyrillic and Greek letters that look like Latin ones read as those)
  is another user's: a one-script "аdmіn" in Cyrillic or "Admin" beside "admin".

Python's ``unicodedata`` has no confusables table (Unicode TR39's); the map below is the short list of letters that
look like Latin ones in common fonts, enough for the names an operator types.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# Lower-case (after casefold) Cyrillic and Greek letters drawn like a Latin letter.
_LOOKALIKES = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "с": "c",
    "ԁ": "d",
    "е": "e",
    "һ": "h",
    "і": "i",
    "ј": "j",
    "к": "k",
    "ӏ": "l",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "ԛ": "q",
    "ѕ": "s",
    "т": "t",
    "у": "y",
    "ԝ": "w",
    "х": "x",
    "ү": "y",
    # Greek
    "α": "a",
    "β": "b",
    "ε": "e",
    "η": "n",
    "ι": "i",
    "κ": "k",
    "μ": "u",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "γ": "y",
    "ω": "w",
}
_LOOKALIKE_TABLE = str.maketrans(_LOOKALIKES)
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def username_skeleton(name: str) -> str:
    """What ``name`` looks like: NFKC (full-width letters as ASCII), case folded, look-alike letters as Latin."""
    return unicodedata.normalize("NFKC", name).casefold().translate(_LOOKALIKE_TABLE)


def _scripts(name: str) -> dict[str, str]:
    """The scripts of ``name``'s letters (of Latin, Cyrillic, Greek), each with its first letter."""
    found: dict[str, str] = {}
    for ch in unicodedata.normalize("NFKC", name):
        if ch.isalpha():
            script = unicodedata.name(ch, "").split(" ", 1)[0]
            if script in _SCRIPTS:
                found.setdefault(script, ch)
    return found


@deconstructible
class UsernameLookalikeValidator:
    """Refuse a username that mixes Latin with Cyrillic or Greek letters, or that looks like another user's."""

    def __call__(self, value: Any) -> None:
        name = str(value)
        scripts = _scripts(name)
        if "LATIN" in scripts and len(scripts) > 1:
            other = next(s for s in scripts if s != "LATIN")
            raise ValidationError(
                f"“{name}” mixes Latin letters with {other.title()} ones (“{scripts[other]}”), which can look "
                "alike: write the name in one alphabet.",
                code="mixed_script",
            )
        from django.contrib.auth import get_user_model

        skeleton = username_skeleton(name)
        # The user's own current name is not another's (an unchanged name on the admin's change form).
        for existing in get_user_model().objects.exclude(username=name).values_list("username", flat=True):
            if username_skeleton(existing) == skeleton:
                raise ValidationError(
                    f"“{name}” looks like the existing user “{existing}”: choose a name that reads differently.",
                    code="lookalike",
                )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UsernameLookalikeValidator)

    def __hash__(self) -> int:
        return hash(type(self))


def install_username_lookalike_validator() -> None:
    """Add the validator to ``User.username`` once: the field's validators are what the admin's forms
    (``full_clean``) and ``createsuperuser`` run, so every way a person makes or renames a user checks it."""
    from django.contrib.auth import get_user_model

    field = get_user_model()._meta.get_field("username")
    if not any(isinstance(v, UsernameLookalikeValidator) for v in field.validators):
        field.validators.append(UsernameLookalikeValidator())
