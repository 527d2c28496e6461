"""Keyed one-way pseudonyms: Telegram ids in log lines and an erased patient's ids in the audit
trail are replaced by an HMAC-SHA256 of them, so that neither can be joined to a person without
the key (``PSEUDONYM_KEY``; by default derived from the bot token, which is as secret)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Log lines and audit rows use different domains: a log line cannot be joined to an erased
# patient's audit rows even by someone who holds both.
LOG_DOMAIN = "log"
ERASED_DOMAIN = "erased"


def derive_key(secret: str) -> bytes:
    """The pseudonym key from a secret setting (PSEUDONYM_KEY, else the bot token)."""
    return hmac.new(b"oblako-pseudonym-key", secret.encode(), hashlib.sha256).digest()


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def of(self, domain: str, value: int | str, length: int = 16) -> str:
        digest = hmac.new(self._key, f"{domain}:{value}".encode(), hashlib.sha256).hexdigest()
        return digest[:length]


class _LogIds:
    """How Telegram ids are written into log lines (set once by ``configure_logging``)."""

    pseudonymizer = Pseudonymizer(secrets.token_bytes(32))  # until configured: a random key
    plain = False


def configure_log_ids(key: bytes, *, plain: bool = False) -> None:
    _LogIds.pseudonymizer = Pseudonymizer(key)
    _LogIds.plain = plain


class TelegramId:
    """A Telegram id as a log argument: ``logger.info("… %s", tg(user_id))`` writes ``u:<hash>``
    (or the plain id when LOG_PLAIN_IDS is on, for debugging). Group and channel ids (negative)
    are not people and stay plain."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value

    def __str__(self) -> str:
        if _LogIds.plain or self.value <= 0:
            return str(self.value)
        return "u:" + _LogIds.pseudonymizer.of(LOG_DOMAIN, self.value, 12)

    __repr__ = __str__


def tg(value: int | None) -> TelegramId | None:
    """Wrap a Telegram user/chat id for a log call (the one mechanism for ids in logs)."""
    return None if value is None else TelegramId(value)
