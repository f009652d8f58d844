"""Failure types shared by templates, adapters and the dispatcher.

The dispatcher only needs to know one thing about a failure: is it worth trying
again later?  Adapters therefore translate every transport-specific error into
one of the two classes below.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base class for delivery failures of one effect."""


class PermanentError(ChannelError):
    """Retrying cannot help (bad address, rejected content, broken template).

    The dispatcher dead-letters the effect immediately.
    """


class TemporaryError(ChannelError):
    """The receiver may accept the effect later (network, 4xx SMTP, HTTP 5xx/429).

    The dispatcher retries with exponential backoff until the retry budget is spent.
    """


class TemplateRenderError(PermanentError):
    """A message template failed to compile or render, or broke the sandbox."""


class ConfigError(ValueError):
    """The channels/retry configuration is invalid; the message names the key."""
