"""Keyboard builders. Button texts come from i18n; callback data from bot.callbacks."""
