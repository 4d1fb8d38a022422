"""A secret shown once on the page after a redirect: a user's new API token, an integration's new token.

The form posts, the secret is issued, and the browser is sent on to a page that shows it (so reloading that page
does not post the form again and issue a second one). The secret used to wait for that page in the session: written
in plain text to the session's row, it stayed there until the next page load; a redirect never followed left it
there for the session's life, and two tabs (or a back navigation replaying a page load) that read the session
before either saved it each showed it.

Now the session never holds it. The secret is sealed with a one-time pad: the sealed bytes wait in the shared Redis
(``SHOW_ONCE_SECONDS`` at most), the pad and the Redis key in the session. The page that shows it takes both: the
session's entry popped, the Redis entry read and deleted in one command (``GETDEL``), so it is shown at most once
whichever request comes first, and neither store alone ever held it. Redis unreachable when it is issued:
``show_once_hold`` says so and the view shows the secret in the answer to the post itself (``no-store``), rather than
losing it."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from django.http import HttpRequest
from redis.exceptions import RedisError

from workbench.redis_client import redis_for, redis_key_for, redis_unanswered

logger = logging.getLogger(__name__)

# Long enough to follow a redirect on a slow connection; past it an unfollowed redirect's secret is gone.
SHOW_ONCE_SECONDS = 120


def show_once_hold(request: HttpRequest, *, name: str, value: dict[str, Any]) -> bool:
    """Hold ``value`` (JSON-able, holding the secret) for the next ``show_once_take(name=name)`` of this session; False
    when Redis could not be reached (nothing held: show it now)."""
    plain = json.dumps(value).encode()
    pad = secrets.token_bytes(len(plain))
    handle = secrets.token_urlsafe(18)
    try:
        _client().set(_redis_key(handle), bytes(a ^ b for a, b in zip(plain, pad, strict=True)), ex=SHOW_ONCE_SECONDS)
    except (RedisError, OSError) as exc:
        redis_unanswered(alias="shared", exc=exc)
        logger.warning("A new secret shown at once (not after the redirect): the shared cache is unreachable (%s)", exc)
        request.session.pop(name, None)
        return False
    request.session[name] = {"handle": handle, "pad": pad.hex()}
    return True


class ShowOnceLost(Exception):
    """This session was to be shown a secret under the name, and it is gone: another tab or page load took it, its
    ``SHOW_ONCE_SECONDS`` ran out, or Redis could not be reached. The message says so, for the page to show."""


SHOW_ONCE_LOST_TEXT = (
    "Your new key cannot be shown here: it was shown once already (in another tab, or a load of this page before "
    "this one), its {minutes} minutes ran out, or the shared cache could not be reached. The key it was is kept "
    "nowhere: rotate the token for a key you can copy."
)


def show_once_take(request: HttpRequest, *, name: str) -> dict[str, Any] | None:
    """What ``show_once_hold`` held for this session under ``name``, once: None when nothing is held for it (a plain
    load of the page). ``ShowOnceLost`` when something was held and is gone (taken already by another tab or a
    replayed page load, its time ran out, Redis unreachable): the page says so, where it said nothing and read as
    if no key had been made. Either way nothing of it is left."""
    held = request.session.pop(name, None)
    if not isinstance(held, dict) or not held.get("handle") or not held.get("pad"):
        return None
    lost = ShowOnceLost(SHOW_ONCE_LOST_TEXT.format(minutes=SHOW_ONCE_SECONDS // 60))
    try:
        sealed = _client().getdel(_redis_key(str(held["handle"])))
        pad = bytes.fromhex(str(held["pad"]))
    except (RedisError, OSError) as exc:
        redis_unanswered(alias="shared", exc=exc)
        logger.warning("A new secret not shown: the shared cache is unreachable (%s)", exc)
        raise lost from exc
    except ValueError:
        raise lost from None
    if not isinstance(sealed, bytes) or len(sealed) != len(pad):
        raise lost
    value = json.loads(bytes(a ^ b for a, b in zip(sealed, pad, strict=True)))
    if not isinstance(value, dict):
        raise lost
    return value


def _client() -> Any:
    return redis_for(alias="shared")


def _redis_key(handle: str) -> str:
    return redis_key_for(alias="shared", key=f"show-once:{handle}")
