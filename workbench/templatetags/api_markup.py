"""``{% load api_markup %}``: ``{{ block.super|without_inline_style }}`` in the browsable API's template
(``templates/rest_framework/api.html``). DRF's own markup places two buttons with ``style="…"`` attributes, which
the strict Content-Security-Policy refuses (unstyled, and a violation report on every page load): each known one
becomes a data attribute ``static/api_browsable.css`` styles. One the mapping does not know is left as it is, so the
browsable API's markup scan (tests/workbench/test_csp.py) names it after a DRF upgrade."""

from __future__ import annotations

import re

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# DRF's inline style → the attribute ``static/api_browsable.css`` gives that style.
_DRF_STYLES = {"float: right; margin-right: 10px": "data-api-aside"}
# A whole attribute: escaped text (a name, a path) never holds a literal quote, so it cannot end in one.
_STYLE_ATTRIBUTE = re.compile(r'\sstyle="([^"<>]*)"')


@register.filter
def without_inline_style(markup: SafeString) -> SafeString:
    """``markup`` (rendered template markup, already escaped) with DRF's known ``style`` attributes as data ones."""

    def swapped(found: re.Match[str]) -> str:
        known = _DRF_STYLES.get(found.group(1).strip())
        return f" {known}" if known else found.group(0)

    return mark_safe(_STYLE_ATTRIBUTE.sub(swapped, str(markup)))  # noqa: S308 (escaped markup, attributes swapped)
