"""Sandboxed template rendering and apply-time validation."""

from __future__ import annotations

import pytest

from cairn.channels import check_template, render_message
from cairn.channels.errors import PermanentError, TemplateRenderError


def test_renders_event_attrs_both_ways_and_profile(make_effect):
    effect = make_effect(message={
        "text": "Hi {{ profile.first_name }}, {{ event.attrs.total_amount }} EUR at {{ event.store_code }}"
                " ({{ event.type }}, {{ loyalty.club.qualifying }} pts, {{ contact }})",
    })
    assert render_message(effect) == {"text": "Hi Ann, 42 EUR at MI01 (purchase, 10 pts, c1)"}


def test_missing_values_render_empty_and_never_raise(make_effect):
    effect = make_effect(
        message={
            "text": "Hi {{ profile.first_name | default('there') }}|{{ event.attrs.nope }}|{{ a.b.c.d }}"
                    "|{{ profile.age + 1 }}|{% if profile.age > 30 %}old{% endif %}"
                    "|{% for x in profile.tags %}{{ x }}{% endfor %}|{{ event.missing | upper }}",
            "subject": "{{ nothing }}",
        },
        context={"event": {"id": "e1", "type": "t", "attrs": {}}, "profile": {}},
    )
    assert render_message(effect) == {"text": "Hi there||||||", "subject": ""}


def test_nulls_and_missing_values_in_json_render_as_null_or_empty(make_effect):
    effect = make_effect(
        message={"text": "{{ event.attrs.coupon }}|{{ {'c': event.attrs.coupon, 'm': event.attrs.nope} | tojson }}"},
        context={"event": {"id": "e1", "type": "t", "attrs": {"coupon": None}}, "profile": {}},
    )
    assert render_message(effect) == {"text": '|{"c": null, "m": null}'}


def test_effect_without_context_renders(make_effect):
    effect = make_effect(message={"text": "Hello {{ profile.first_name }}!"})
    del effect["context"]
    assert render_message(effect) == {"text": "Hello !"}


def test_html_is_autoescaped_text_is_not(make_effect):
    effect = make_effect(
        message={"text": "{{ profile.first_name }}", "html": "<p>{{ profile.first_name }}</p>"},
        context={"profile": {"first_name": "<b>Ann & co</b>"}},
    )
    assert render_message(effect) == {
        "text": "<b>Ann & co</b>",
        "html": "<p>&lt;b&gt;Ann &amp; co&lt;/b&gt;</p>",
    }


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ event.__init__.__globals__ }}",
    "{{ range(10**9) | list }}",
])
def test_sandbox_violation_is_a_permanent_error(make_effect, source):
    with pytest.raises(TemplateRenderError) as info:
        render_message(make_effect(message={"text": source}))
    assert isinstance(info.value, PermanentError)
    assert "message.text" in str(info.value)


def test_broken_template_at_render_time_is_permanent(make_effect):
    with pytest.raises(TemplateRenderError, match="line 1"):
        render_message(make_effect(message={"text": "Hi {{ name }"}))


def test_check_template_reports_line_or_none():
    assert check_template("Hi {{ profile.first_name | default('there') }}") is None
    assert check_template("Hi\nthere {{ name }") == "line 2: unexpected '}'"
    assert check_template("ok\n{% if x %}\nno end").startswith("line 2: Unexpected end of template")
    assert check_template("{{ x | no_such_filter }}") == "line 1: No filter named 'no_such_filter'."


def test_compiled_templates_are_cached(make_effect):
    from cairn.channels import templates

    text = "cache probe {{ profile.first_name }}"
    render_message(make_effect(message={"text": text}))
    hits = templates._compile.cache_info().hits
    render_message(make_effect(message={"text": text}))
    assert templates._compile.cache_info().hits == hits + 1
