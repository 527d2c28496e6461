"""The messengers patients use: Telegram (aiogram) and MAX (aiogram-max, Python >= 3.12).

Nothing here imports aiogram_max; ``bot.messengers.max_adapter`` does, and is imported only when
``MAX_BOT_TOKEN`` is set."""

from __future__ import annotations

import importlib.util

from bot.config import SettingsError


def require_max_support() -> None:
    """MAX_BOT_TOKEN set where aiogram-max cannot run: said at start, never ignored."""
    if importlib.util.find_spec("aiogram_max") is None:
        raise SettingsError(
            "MAX_BOT_TOKEN is set but aiogram-max is not installed: MAX needs Python >= 3.12 "
            'and `pip install ".[max]"` (or unset MAX_BOT_TOKEN)'
        )
