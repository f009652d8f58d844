"""Sandboxed Jinja2 rendering of effect messages.

Templates are authored by marketers in program definitions, so they are treated as
untrusted: rendering happens in jinja2's ``SandboxedEnvironment`` with no loader
(no ``include``/``import`` from disk).  Missing personalization data must never
break a send, so undefined values render as an empty string; only sandbox
violations and genuinely broken templates raise :class:`TemplateRenderError`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, NoReturn
from collections.abc import Mapping

from jinja2 import ChainableUndefined, Template, TemplateError, TemplateSyntaxError, Undefined
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from .errors import TemplateRenderError

# Message fields rendered with HTML autoescaping; everything else is plain text.
_HTML_FIELDS = frozenset({"html"})
_CACHE_SIZE = 1024


class LenientUndefined(ChainableUndefined):
    """Undefined that renders empty and tolerates arithmetic and comparisons.

    ``{{ event.attrs.total * 2 }}`` on a contact without that attribute should
    yield an empty string, not a failed send.  Undefined values produced by the
    sandbox refusing an unsafe attribute keep failing loudly, though, so that
    ``{{ ''.__class__ }}`` is reported instead of silently rendering nothing.
    """

    __slots__ = ()

    def _is_security_violation(self) -> bool:
        return issubclass(self._undefined_exception, SecurityError)

    def _guard(self) -> None:
        if self._is_security_violation():
            self._fail_with_undefined_error()

    def __str__(self) -> str:
        self._guard()
        return ""

    def __html__(self) -> str:
        return self.__str__()

    def __iter__(self):  # type: ignore[override]
        self._guard()
        return iter(())

    def __bool__(self) -> bool:
        self._guard()
        return False

    def __len__(self) -> int:
        self._guard()
        return 0

    def _chain(self, *_args: Any, **_kwargs: Any) -> LenientUndefined:
        self._guard()
        return self

    def _false(self, *_args: Any) -> bool:
        self._guard()
        return False

    __add__ = __radd__ = __sub__ = __rsub__ = _chain
    __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _chain
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _chain
    __pow__ = __rpow__ = __pos__ = __neg__ = __call__ = _chain
    __lt__ = __le__ = __gt__ = __ge__ = _false


def _json_default(value: Any) -> Any:
    # A missing value inside ``tojson`` is null, like everywhere else it is empty.
    if isinstance(value, Undefined):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _make_env(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        autoescape=autoescape,
        undefined=LenientUndefined,
        loader=None,
        keep_trailing_newline=True,
        # A field present but null renders empty, as a missing one does.
        finalize=lambda value: "" if value is None else value,
    )
    env.policies["json.dumps_function"] = lambda obj, **kw: json.dumps(obj, default=_json_default, **kw)
    return env


_TEXT_ENV = _make_env(autoescape=False)
_HTML_ENV = _make_env(autoescape=True)


@lru_cache(maxsize=_CACHE_SIZE)
def _compile(source: str, html: bool) -> Template:
    env = _HTML_ENV if html else _TEXT_ENV
    return env.from_string(source)


def _describe_syntax_error(err: TemplateSyntaxError) -> str:
    return f"line {err.lineno}: {err.message}"


def check_template(source: str) -> str | None:
    """Validate a template at program-apply time.

    Returns ``None`` when ``source`` compiles, else a message such as
    ``"line 2: unexpected '}'"`` suitable for showing to the program author.
    Unknown filters and tests are reported too, since Jinja resolves them at
    compile time.
    """
    try:
        _compile(source, False)
    except TemplateSyntaxError as err:
        return _describe_syntax_error(err)
    return None


def template_context(effect: Mapping[str, Any]) -> dict[str, Any]:
    """Build the top-level variables for rendering ``effect``'s message.

    The variables are the keys of ``effect["context"]``; ``event`` additionally
    exposes its attributes directly so ``{{ event.store_code }}`` and
    ``{{ event.attrs.store_code }}`` are equivalent.
    """
    context = dict(effect.get("context") or {})
    event = context.get("event")
    if isinstance(event, Mapping):
        attrs = event.get("attrs") or {}
        # Envelope fields (id, type, ts, source) win over same-named attributes.
        envelope = {k: v for k, v in event.items() if k != "attrs"}
        context["event"] = {**attrs, "attrs": attrs, **envelope}
    return context


def _fail(where: str, err: Exception) -> NoReturn:
    if isinstance(err, TemplateSyntaxError):
        detail = _describe_syntax_error(err)
    else:
        detail = f"{type(err).__name__}: {err}"
    if isinstance(err, SecurityError):
        detail = f"sandbox violation: {err}"
    raise TemplateRenderError(f"{where}: {detail}") from err


def render_field(field: str, source: str, context: Mapping[str, Any], section: str = "message") -> str:
    """Render one field of ``section``; HTML fields are autoescaped.

    Errors are reported as ``"<section>.<field>: ..."``.
    """
    try:
        return _compile(source, field in _HTML_FIELDS).render(context)
    except (TemplateError, SecurityError) as err:  # SecurityError is a TemplateError
        _fail(f"{section}.{field}", err)
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as err:
        # Deterministic template bugs: retrying would fail the same way.
        _fail(f"{section}.{field}", err)


def render_message(effect: Mapping[str, Any]) -> dict[str, str]:
    """Render every string field of ``effect["message"]``.

    Raises :class:`TemplateRenderError` (a ``PermanentError``) on syntax errors
    and sandbox violations; missing values render as empty strings.
    """
    message = effect.get("message") or {}
    context = template_context(effect)
    rendered: dict[str, str] = {}
    for field, source in message.items():
        if source is None:
            continue
        rendered[field] = render_field(field, str(source), context)
    return rendered


def render_webhook_body(effect: Mapping[str, Any]) -> str | None:
    """Render ``effect["webhook"]["body"]`` with the message context; ``None`` if absent.

    Same sandbox and leniency as messages; errors read ``"webhook.body: ..."``.
    """
    call = effect.get("webhook") or {}
    source = call.get("body") if isinstance(call, Mapping) else None
    if source is None:
        return None
    return render_field("body", str(source), template_context(effect), section="webhook")
