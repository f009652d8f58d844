"""SMTP adapter: delivers ``email`` effects through a configured SMTP server.

One connection is kept open and reused across sends; SMTP is a sequential
protocol, so sends on this adapter are serialized by a lock.  A connection the
server dropped (idle timeout) is reopened transparently, once per send.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from collections.abc import Mapping

import aiosmtplib

from .config import SmtpSettings
from .errors import ChannelError, PermanentError, TemporaryError

log = logging.getLogger("cairn.channels.email")

DEFAULT_SUBJECT = "(no subject)"


def _one_line(value: str) -> str:
    # Rendered subjects may contain newlines from profile data; in a header they
    # would be rejected by the email package (or worse, inject headers).
    return " ".join(value.split())


def _recipient(effect: Mapping[str, Any]) -> str:
    to = effect.get("to")
    if not isinstance(to, str) or "@" not in to or any(c in to for c in "\r\n,;"):
        raise PermanentError(f"email: invalid recipient {to!r}")
    return to.strip()


def build_email(effect: Mapping[str, Any], rendered: Mapping[str, str], sender: str) -> EmailMessage:
    """Build the MIME message: text body, optional HTML alternative, Cairn headers."""
    effect_id = str(effect.get("id", ""))
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = _recipient(effect)
    msg["Subject"] = _one_line(rendered.get("subject") or "") or DEFAULT_SUBJECT
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    # A stable Message-ID lets receiving systems drop redelivered duplicates.
    msg["Message-ID"] = f"<{effect_id}@cairn>"
    msg["X-Cairn-Effect-Id"] = effect_id
    msg.set_content(rendered.get("text", ""))
    if rendered.get("html"):
        msg.add_alternative(rendered["html"], subtype="html")
    return msg


def _by_code(code: int, text: str) -> ChannelError:
    cls = PermanentError if 500 <= code < 600 else TemporaryError
    return cls(f"smtp {code}: {text}")


def classify_smtp_error(err: Exception) -> ChannelError:
    """Map an aiosmtplib/OS error to permanent (5xx) or temporary (everything else)."""
    if isinstance(err, aiosmtplib.SMTPAuthenticationError):
        # Bad credentials are an operator problem, not a property of the message;
        # dead-lettering every email for it would be wrong, so keep retrying.
        return TemporaryError(f"smtp auth failed {err.code}: {err.message}")
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in err.recipients]
        text = "; ".join(f"{r.code} {r.message}" for r in err.recipients)
        return _by_code(min(codes) if codes else 450, f"recipient refused: {text}")
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return _by_code(err.code, err.message)
    return TemporaryError(f"smtp {type(err).__name__}: {err}")


class SmtpAdapter:
    """Adapter for ``type: smtp`` channels."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            timeout=s.timeout_s,
            use_tls=s.use_tls,
            start_tls=s.starttls,
        )

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            await self._drop()
            client = self._new_client()
            await client.connect()
            self._client = client
        return self._client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def _send_once(self, msg: EmailMessage) -> None:
        client = await self._connected()
        try:
            await client.send_message(msg)
        except aiosmtplib.SMTPServerDisconnected:
            # The server may close idle connections; retry on a fresh one, once.
            await self._drop()
            client = await self._connected()
            await client.send_message(msg)

    async def send(self, effect: Mapping[str, Any], rendered: Mapping[str, str]) -> None:
        """Send one email; raises PermanentError on 5xx, TemporaryError otherwise."""
        msg = build_email(effect, rendered, self._settings.sender)
        async with self._lock:
            try:
                await self._send_once(msg)
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as err:
                if isinstance(err, (aiosmtplib.SMTPServerDisconnected, OSError)):
                    await self._drop()
                raise classify_smtp_error(err) from err

    async def flush(self) -> None:
        """Nothing to do: the server accepted each message when send returned."""

    async def close(self) -> None:
        """Politely QUIT the kept-alive connection."""
        async with self._lock:
            await self._drop()
