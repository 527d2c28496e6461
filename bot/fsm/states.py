"""Every StatesGroup of the bot, named for what the bot is waiting for."""

from aiogram.fsm.state import State, StatesGroup


class Registration(StatesGroup):
    """New patient: consent, then the fields; the same field states serve profile edits."""

    consent = State()
    full_name = State()
    birth_date = State()
    phone = State()
    region = State()
    time_zone = State()
    summary = State()
    cancel_confirm = State()


class Profile(StatesGroup):
    delete_confirm = State()
    delete_final = State()


class Documents(StatesGroup):
    upload = State()  # files are expected (they are also taken from the main menu)
