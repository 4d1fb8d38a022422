"""Usernames that read as another: "аdmin" with a Cyrillic "а", "Аdmin", "ΑDMIN" (Greek) were taken beside "admin".

The audit trail, the claim holder ("held by admin") and the role header name users by username, so a look-alike
passes for another user on every screen. One validator on ``User.username`` (installed in ``WorkbenchConfig.ready``)
refuses, wherever a user is made or renamed (the admin's user forms, ``createsuperuser``, ``full_clean``):

- a name mixing Latin letters with Cyrillic or Greek ones (no real name needs both; look-alikes do);
- a name whose skeleton (NFKC, case folded, the Cyrillic and Greek letters that look like Latin ones read as those)
  is another user's: a one-script "аdmіn" in Cyrillic or "Admin" beside "admin".

Python's ``unicodedata`` has no confusables table (Unicode TR39's), and none is on the machine to read; what it has
is each character's name, which says its script ("ARMENIAN SMALL LETTER OH") and, for Latin's odd letters, which
letter they are drawn as ("LATIN LETTER SMALL CAPITAL A", "LATIN SMALL LETTER DOTLESS I"). So:

- the mixed-script rule reads every letter's script from its name, and every digit's that is not ASCII ("b०b"
  with a Devanagari zero reads "bob"; the skeletons read such a digit as its ASCII one): Latin beside any other alphabet (Armenian "օ",
  Cherokee, …) is refused, as is any two non-Latin alphabets together; Latin with Han, kana and Hangul (Japanese,
  Chinese and Korean names written with Latin letters, TR39's "highly restrictive" set) is not;
- the skeleton reads Latin's small capitals, script, dotless letters, alpha and iota and the dental click as the
  letter they look like, the Cyrillic, Greek and Armenian letters drawn like Latin ones from the short map below;
- a second, case-keeping skeleton catches what case folding hides: a capital "I" beside a small "l" ("paypaI"),
  "1" and "0" for "l" and "o", "rn" for "m", "vv" for "w", "cl" for "d" (TR39's confusables among ASCII).

A whole name in another alphabet that reads as a user's ("ᎫᎪᏦᎬ" in Cherokee beside "jake", "ꓮꓓꓟꓲꓠ" in Lisu beside
"admin") cannot be mixed-script; it is caught by the skeleton, whose map holds the Cherokee, Lisu, Canadian syllabics
and Tifinagh letters drawn like Latin ones, and the message names the alphabet it is written in.
"""

from __future__ import annotations

import re
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
    # Armenian
    "օ": "o",
    "ս": "u",
    "հ": "h",
    "ո": "n",
    "զ": "q",
    "ց": "g",
    # Cherokee capitals (case folding reads Cherokee's small letters as its capitals), after TR39's confusables:
    # a whole name in them ("ᎫᎪᏦᎬ") passes for a Latin one ("jake"). No font on this machine draws Cherokee.
    "Ꭺ": "a",
    "Ᏼ": "b",
    "Ꮟ": "b",
    "Ꮯ": "c",
    "Ꭰ": "d",
    "Ꮷ": "d",
    "Ꭼ": "e",
    "Ꮐ": "g",
    "Ᏻ": "g",
    "Ꮋ": "h",
    "Ꮒ": "h",
    "Ꭵ": "i",
    "Ꭻ": "j",
    "Ꮶ": "k",
    "Ꮮ": "l",
    "Ꮇ": "m",
    "Ꮎ": "o",
    "Ꮻ": "o",
    "Ꮲ": "p",
    "Ꭱ": "r",
    "Ꮢ": "r",
    "Ꮪ": "s",
    "Ꮥ": "s",
    "Ꭲ": "t",
    "Ꮩ": "v",
    "Ꮃ": "w",
    "Ꮤ": "w",
    "Ꮍ": "y",
    "Ꮓ": "z",
    # Lisu: each of these is drawn exactly as the Latin capital (DejaVu Sans uses the same outline).
    "ꓮ": "a",
    "ꓐ": "b",
    "ꓚ": "c",
    "ꓓ": "d",
    "ꓰ": "e",
    "ꓝ": "f",
    "ꓖ": "g",
    "ꓧ": "h",
    "ꓲ": "i",
    "ꓙ": "j",
    "ꓗ": "k",
    "ꓡ": "l",
    "ꓟ": "m",
    "ꓠ": "n",
    "ꓳ": "o",
    "ꓑ": "p",
    "ꓣ": "r",
    "ꓢ": "s",
    "ꓔ": "t",
    "ꓴ": "u",
    "ꓦ": "v",
    "ꓪ": "w",
    "ꓫ": "x",
    "ꓬ": "y",
    "ꓜ": "z",
    # Canadian syllabics and Tifinagh letters drawn as a Latin capital (the same outline in DejaVu Sans).
    "ᗞ": "d",
    "ᕼ": "h",
    "ᒪ": "l",
    "ᑌ": "u",
    "ᐯ": "v",
    "ⴹ": "e",
    "ⵏ": "i",
    "ⴸ": "v",
    "ⵝ": "x",
}
_LOOKALIKE_TABLE = str.maketrans(_LOOKALIKES)
# Latin letters named after the letter they are drawn as: "LATIN LETTER SMALL CAPITAL A", "LATIN SMALL LETTER SCRIPT
# G", "LATIN SMALL LETTER DOTLESS I" (read from ``unicodedata``'s names, not listed by hand).
_LATIN_DRAWN_AS = re.compile(r"LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL|SCRIPT|DOTLESS) ([A-Z])")
_LATIN_NAMED_LOOKALIKES = {
    "LATIN SMALL LETTER ALPHA": "a",
    "LATIN SMALL LETTER IOTA": "i",
    "LATIN LETTER DENTAL CLICK": "l",
}
# Scripts whose letters may stand beside Latin ones in one name (TR39's highly restrictive level: Japanese, Chinese
# and Korean writing mixes them with Latin); any other pair of scripts in one name is refused.
_MIX_WITH_LATIN = {"CJK", "IDEOGRAPHIC", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO"}
# First words of letters' names that are no script: "MODIFIER LETTER TURNED COMMA" (the ʻokina of "Hawaiʻi").
_NO_SCRIPT = {"MODIFIER"}
# How a message names a script whose letters' names start with a word that is not its whole name.
_SCRIPT_WORDS = {"CANADIAN": "Canadian syllabics"}
# ASCII confusables case folding hides or keeps apart (TR39's): read on the case-keeping skeleton.
_ASCII_DIGRAPHS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_ASCII_LOOKALIKES = str.maketrans({"I": "l", "1": "l", "|": "l", "0": "o"})


def _latin_as_drawn(name: str) -> str:
    out = []
    for ch in name:
        if ord(ch) < 128:
            out.append(ch)
            continue
        char_name = unicodedata.name(ch, "")
        drawn = _LATIN_DRAWN_AS.fullmatch(char_name)
        out.append(drawn.group(1).lower() if drawn else _LATIN_NAMED_LOOKALIKES.get(char_name, ch))
    return "".join(out)


def username_skeleton(name: str) -> str:
    """What ``name`` looks like: NFKC (full-width letters as ASCII), case folded, look-alike letters as Latin."""
    folded = _script_digits(unicodedata.normalize("NFKC", name).casefold())
    return _latin_as_drawn(folded).translate(_LOOKALIKE_TABLE)


def username_skeleton_cased(name: str) -> str:
    """What ``name`` looks like letter by letter before case folding merges "I" with "i": a capital I, "1" and "|" as
    "l", "0" as "o", then ``username_skeleton``'s reading, then "rn" as "m", "vv" as "w", "cl" as "d"."""
    folded = username_skeleton(_script_digits(unicodedata.normalize("NFKC", name)).translate(_ASCII_LOOKALIKES))
    for pair, single in _ASCII_DIGRAPHS:
        folded = folded.replace(pair, single)
    return folded


def _scripts(name: str) -> dict[str, str]:
    """The scripts of ``name``'s letters and of its digits other than ASCII's (the first word of each one's Unicode
    name: LATIN, CYRILLIC, CJK, HIRAGANA, DEVANAGARI…), each with its first such character. A script's digits count:
    "b०b" with a DEVANAGARI DIGIT ZERO, or a Myanmar "၀", reads "bob"."""
    found: dict[str, str] = {}
    for ch in unicodedata.normalize("NFKC", name):
        if ch.isalpha() or (unicodedata.category(ch) == "Nd" and not ch.isascii()):
            words = unicodedata.name(ch, "").removeprefix("EXTENDED ")
            script = words.split(" ", 1)[0].split("-", 1)[0]
            if script and script not in _NO_SCRIPT:
                found.setdefault(script, ch)
    return found


def _script_digits(name: str) -> str:
    """``name`` with every digit of another script written as its ASCII digit ("०" as "0", which the case-keeping
    skeleton reads as "o")."""
    return "".join(
        str(unicodedata.decimal(ch)) if not ch.isascii() and unicodedata.category(ch) == "Nd" else ch for ch in name
    )


def _mixed(scripts: dict[str, str]) -> tuple[str, str] | None:
    """Two scripts of ``scripts`` that may not stand together in one name (the first Latin where there is Latin), or
    None when the name is in one script, or Latin with Han, kana, Hangul or Bopomofo only."""
    alone = [s for s in scripts if s != "LATIN" and s not in _MIX_WITH_LATIN]
    if len(scripts) < 2 or not alone:
        return None
    base = "LATIN" if "LATIN" in scripts else next(iter(scripts))
    other = next(s for s in scripts if s != base and (s in alone or base in alone))
    return base, other


def _lookalike_message(name: str, scripts: dict[str, str], existing: str) -> str:
    """Say why ``name`` is refused beside ``existing``; a name wholly in another alphabet than ``existing``'s is
    told which ("it is written in Cherokee letters drawn like Latin ones"): it is no typo of the other."""
    theirs = _scripts(existing)
    if len(scripts) == 1 and theirs and not set(scripts) & set(theirs):
        ours, other = (_SCRIPT_WORDS.get(s, s.title()) for s in (next(iter(scripts)), next(iter(theirs))))
        return (
            f"“{name}” looks like the existing user “{existing}”: it is written in {ours} letters drawn like "
            f"{other} ones. Choose a name that reads differently."
        )
    return f"“{name}” looks like the existing user “{existing}”: choose a name that reads differently."


@deconstructible
class UsernameLookalikeValidator:
    """Refuse a username that mixes alphabets (Latin with Cyrillic, Greek, Armenian…), or that looks like another
    user's by either skeleton."""

    def __call__(self, value: Any) -> None:
        name = str(value)
        scripts = _scripts(name)
        mixed = _mixed(scripts)
        if mixed is not None:
            base, other = mixed
            base_kind = "digits" if unicodedata.category(scripts[base]) == "Nd" else "letters"
            ones = "digits" if unicodedata.category(scripts[other]) == "Nd" else "ones"
            raise ValidationError(
                f"“{name}” mixes {base.title()} {base_kind} with {other.title()} {ones} (“{scripts[other]}”), which "
                "can look alike: write the name in one alphabet.",
                code="mixed_script",
            )
        from django.contrib.auth import get_user_model

        skeleton, cased = username_skeleton(name), username_skeleton_cased(name)
        # The user's own current name is not another's (an unchanged name on the admin's change form).
        for existing in get_user_model().objects.exclude(username=name).values_list("username", flat=True):
            if username_skeleton(existing) == skeleton or username_skeleton_cased(existing) == cased:
                raise ValidationError(_lookalike_message(name, scripts, existing), code="lookalike")

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
