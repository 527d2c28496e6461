"""Settings read from the environment and an optional ``.env`` file (pydantic-settings)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOKEN_RE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,}$")


class SettingsError(Exception):
    """A setting is missing or malformed; ``str()`` is one line naming it."""


class Settings(BaseSettings):
    """Every setting of the bot; see ``.env.example`` for the documentation of each."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org"
    telegram_api_local: bool = False
    # Patients on MAX too (extra `max`, Python >= 3.12): on when the token is set. The API base
    # is the one MAX's docs (dev.max.ru/docs-api) name now; aiogram-max's default is older.
    max_bot_token: SecretStr | None = None
    max_api_base: str = "https://platform-api2.max.ru"
    database_url: str = "sqlite+aiosqlite:///./data/oblako.db"
    redis_url: str | None = None
    duty_chat_id: int | None = None
    coordinator_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    files_dir: Path = Path("./data/files")
    catalog_path: Path | None = None
    default_locale: Literal["ru", "en"] = "ru"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    consent_version: str = "2026-11-01"
    max_download_mb: int = Field(default=20, ge=1, le=2000)
    upload_quiet_seconds: float = Field(default=3.0, gt=0, le=60)
    video_base_url: str = "https://meet.jit.si"
    max_duty_bookings: int = Field(default=2, ge=1, le=20)
    cancel_cutoff_hours: float = Field(default=2.0, ge=0, le=168)
    outbox_tick_seconds: float = Field(default=1.0, gt=0, le=3600)
    outbox_global_per_second: float = Field(default=30.0, gt=0)
    outbox_per_chat_per_second: float = Field(default=1.0, gt=0)
    outbox_per_group_per_minute: float = Field(default=20.0, gt=0)
    shutdown_grace_seconds: float = Field(default=20.0, gt=0)

    # --- coordinators' broadcasts (/broadcast) ---
    # Broadcast messages are queued at this rate, below OUTBOX_GLOBAL_PER_SECOND, so personal
    # notifications keep flowing while a broadcast runs.
    broadcast_per_second: float = Field(default=20.0, gt=0)
    # The coordinator's progress message is edited at most this often.
    broadcast_progress_seconds: float = Field(default=5.0, ge=1, le=600)
    # --- referrals of attending doctors (issue 7, part A) ---
    # How long a referral's personal link (t.me/<bot>?start=ref_…) stays valid, in days.
    referral_link_days: int = Field(default=30, ge=1, le=365)
    # --- consultation day: reminders, the doctors' heads-up, no-shows (issue 6) ---
    reminder_offsets_minutes: Annotated[tuple[int, ...], NoDecode] = (1440, 120, 15)
    doctor_headsup_minutes: int = Field(default=10, ge=0, le=1440)
    no_show_alert_after: int = Field(default=2, ge=1, le=100)

    @field_validator("reminder_offsets_minutes", mode="before")
    @classmethod
    def _offsets(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in re.split(r"[,\s;]+", value.strip()) if p]
            try:
                value = [int(p) for p in parts]
            except ValueError:
                raise ValueError("expected minutes before the start, e.g. 1440,120,15") from None
        if isinstance(value, int):
            value = [value]
        if isinstance(value, list | tuple | set | frozenset):
            minutes = sorted({int(v) for v in value}, reverse=True)
            if any(m <= 0 or m > 7 * 24 * 60 for m in minutes):
                raise ValueError("each offset must be between 1 and 10080 minutes")
            return tuple(minutes)
        return value

    # --- the scheduler: lease, standalone process, SLA, digest, retention (issue 6b) ---------
    # false: this bot process never runs the scheduler (a `python -m scheduler` does).
    scheduler_embedded: bool = True
    # A scheduler holds its lease this long without renewing; a standby takes over after it.
    scheduler_lease_seconds: float = Field(default=30.0, ge=2, le=3600)
    # Applications without a decision this many days after submission are escalated.
    sla_days: int = Field(default=3, ge=1, le=60)
    # The coordinators' daily digest: local time and its zone.
    digest_time: dt.time = dt.time(9, 0)
    digest_time_zone: str = "Europe/Moscow"
    # Finished dialogues and settled outbox rows older than this are deleted once a day.
    retention_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("digest_time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone such as Europe/Moscow") from None
        return value

    # --- personal data: the audit trail and pseudonyms (issue 15) ---
    # Audit rows older than this are deleted by the daily retention job (default: 5 years).
    audit_retention_days: int = Field(default=1826, ge=1, le=36500)
    # The key of the one-way pseudonyms (Telegram ids in logs, an erased patient's ids in the
    # audit trail). Unset: derived from BOT_TOKEN. Changing it makes old pseudonyms unmatchable.
    pseudonym_key: SecretStr | None = None
    # true: logs show plain Telegram ids instead of pseudonyms (for debugging only).
    log_plain_ids: bool = False

    @property
    def pseudonym_secret(self) -> bytes:
        from bot.pseudonyms import derive_key

        secret = self.pseudonym_key or self.bot_token
        return derive_key(secret.get_secret_value())

    # --- scale-out: webhook workers, the update inbox, Redis dialogues (issue 8) ---
    webhook: bool = False  # receive updates by webhook instead of long polling
    webhook_url: str | None = None  # the public https URL Telegram posts updates to
    webhook_path: str | None = None  # the path served locally (default: the URL's path)
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    webhook_secret: SecretStr | None = None  # X-Telegram-Bot-Api-Secret-Token; required
    webhook_max_connections: int = Field(default=40, ge=1, le=100)
    worker_name: str | None = None  # unique per live worker: takes over its own unfinished work
    # A dead worker's hold on its users (its inbox claims, its Redis locks) ends after this long;
    # a live worker renews its claims every third of it. (INBOX_CLAIM_STALE_SECONDS: old name.)
    lock_timeout_seconds: float = Field(
        default=15.0,
        ge=1,
        le=600,
        validation_alias=AliasChoices("lock_timeout_seconds", "inbox_claim_stale_seconds"),
    )
    # A reply to a patient waits through Telegram's 429s, 5xx and network faults this long.
    telegram_outage_seconds: float = Field(default=120.0, ge=0, le=3600)
    inbox_keep_hours: float = Field(default=24.0, gt=0)
    redis_dialogue_ttl_hours: float = Field(default=72.0, gt=0)
    redis_key_prefix: str = Field(default="fsm", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    # --- operations: staff chats from settings, health and metrics (issue 13) ---
    # Center staff chats given here win over the catalog's: "bakulev=-100123,kulakov=-100456".
    staff_chat_ids: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    # GET /healthz and GET /metrics (Prometheus) of this process; unset: not served.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    @field_validator("staff_chat_ids", mode="before")
    @classmethod
    def _staff_chats(cls, value: object) -> object:
        if isinstance(value, str):
            found: dict[str, int] = {}
            for part in (p for p in re.split(r"[,\s;]+", value.strip()) if p):
                code, sep, chat = part.partition("=")
                if not sep or not re.fullmatch(r"-100\d{6,16}", chat.strip()):
                    raise ValueError(
                        "expected center=chat id pairs, e.g. bakulev=-1001234567890,kulakov=-100…"
                    )
                found[code.strip()] = int(chat)
            return found
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected the public URL, e.g. https://bot.example.org/telegram")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()
        ):
            raise ValueError("expected 1-256 characters A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://host:port/db")
        return value or None

    def check_webhook(self) -> None:
        """Webhook mode needs its URL and secret: raise SettingsError naming what is missing."""
        missing = [
            name
            for name, value in (
                ("WEBHOOK_URL", self.webhook_url),
                ("WEBHOOK_SECRET", self.webhook_secret),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                "configuration error: webhook mode needs "
                + " and ".join(missing)
                + " (the secret Telegram sends in X-Telegram-Bot-Api-Secret-Token)"
            )

    @property
    def webhook_route(self) -> str:
        """The path the webhook is served on."""
        if self.webhook_path:
            return "/" + self.webhook_path.lstrip("/")
        from urllib.parse import urlsplit

        return urlsplit(self.webhook_url or "").path or "/"

    @property
    def max_download_bytes(self) -> int:
        return self.max_download_mb * 1024 * 1024

    @field_validator("bot_token")
    @classmethod
    def _token_format(cls, value: SecretStr) -> SecretStr:
        if not TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("expected the form 123456789:AAE... given by @BotFather")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http(s) URL such as https://api.telegram.org")
        return value.rstrip("/")

    @field_validator("max_api_base")
    @classmethod
    def _max_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http(s) URL such as https://platform-api2.max.ru")
        return value.rstrip("/")

    @field_validator("max_bot_token")
    @classmethod
    def _max_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # MAX_BOT_TOKEN= (empty): MAX stays off
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("expected sqlite+aiosqlite:///path or postgresql+asyncpg://...")
        return value

    @field_validator("coordinator_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in re.split(r"[,\s;]+", value.strip()) if p]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("expected Telegram user ids separated by commas") from None
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning validation errors into one line that names the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "?"
            reason = "is required but not set" if error["type"] == "missing" else error["msg"]
            reason = reason.removeprefix("Value error, ")
            problems.append(f"{name} {reason}")
        raise SettingsError("configuration error: " + "; ".join(problems)) from None
