"""`{% form_once %}`: the hidden one-time token of a form that must act once (apps.core.once)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.core.once import ONCE_FIELD, once_token

register = template.Library()


@register.simple_tag
def form_once() -> SafeString:
    return format_html('<input type="hidden" name="{}" value="{}">', ONCE_FIELD, once_token())
