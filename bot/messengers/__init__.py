"""The messengers patients use: Telegram (aiogram) and MAX (aiogram-max, Python >= 3.12).

Nothing here imports aiogram_max; ``bot.messengers.max_adapter`` does, and is imported only when
``MAX_BOT_TOKEN`` is set."""
