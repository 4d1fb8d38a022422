from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workbench.home import home_panels_for
from workbench.roles import Perm
from workbench.storage import is_object_storage, playback_url

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """What each role works on first: the panels its permissions allow (``workbench.home``)."""
    return render(request, "home.html", {"panels": home_panels_for(user=cast(User, request.user))})


@extend_schema(
    request=None,
    responses={200: inline_serializer(name="ApiToken", fields={"token": serializers.CharField()})},
    description="The signed-in user's API token (created on first call); send it as `Authorization: Token <key>`.",
)
@api_view(["POST"])
def obtain_token(request: Request) -> Response:
    """Return (creating it once) the API token of the signed-in user."""
    # IsAuthenticated (the default permission class) has already refused anonymous users.
    token, _ = Token.objects.get_or_create(user=cast(User, request.user))
    return Response({"token": token.key})


def _iter_file(path: Path, start: int, length: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        remaining = length
        while remaining > 0:
            data = fh.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


# Roles whose screens show videos and keyframes (uploaders, moderators, labelers, training admins).
MEDIA_PERMS = (Perm.UPLOAD_VIDEO, Perm.REVIEW_VIDEO, Perm.CORRECT_COT, Perm.MANAGE_TRAINING)


@login_required
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Serve media to signed-in users whose role shows media, with HTTP Range support so the player seeks.

    Moderation media is never public. With object storage the answer is a redirect to a presigned URL
    valid for MEDIA_URL_EXPIRE_SECONDS: the store serves the bytes (and Range requests) itself, Django
    streams nothing. With local storage the file is served from MEDIA_ROOT (in production a reverse
    proxy can take over with X-Accel-Redirect, the permission check staying here).
    """
    if not any(request.user.has_perm(p) for p in MEDIA_PERMS):
        raise PermissionDenied("Your role may not view media.")
    if is_object_storage():
        if ".." in Path(path).parts or path.startswith("/"):
            raise Http404("No such media file.")
        redirect = HttpResponseRedirect(playback_url(path))
        # The browser may reuse the redirect for the player's Range requests while the URL is valid.
        redirect["Cache-Control"] = f"private, max-age={max(int(settings.MEDIA_URL_EXPIRE_SECONDS) // 2, 0)}"
        return redirect
    root = Path(settings.MEDIA_ROOT).resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise Http404("No such media file.")
    size = target.stat().st_size
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    match = _RANGE.fullmatch(request.headers.get("Range", "").strip())
    if not match:
        response: HttpResponseBase = FileResponse(target.open("rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = match.groups()
    if first == "":
        start = max(size - int(last or 0), 0)
        end = size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        resp = HttpResponse(status=416)
        resp["Content-Range"] = f"bytes */{size}"
        return resp
    length = end - start + 1
    response = StreamingHttpResponse(_iter_file(target, start, length), status=206, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response
