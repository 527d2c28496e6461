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


class ApplicationForm(StatesGroup):
    center = State()
    group = State()
    diagnosis = State()
    complaints = State()
    checklist = State()
    summary = State()


class StaffFlow(StatesGroup):
    """A doctor in a staff chat, between pressing a card button and finishing the action."""

    assign_time = State()
    request_documents = State()
    request_comment = State()
    decline_reason = State()
    invite_comment = State()
    conclusion = State()


class DutyBooking(StatesGroup):
    choosing = State()  # specialty → doctor → day → slot → confirm, all by buttons


class MyConsultations(StatesGroup):
    cancel_reason = State()


class Schedule(StatesGroup):
    """A coordinator keeping the duty schedule: adding a doctor, making slots, a CSV."""

    doctor_name = State()
    doctor_specialty = State()
    doctor_about = State()
    doctor_confirm = State()
    slots_doctor = State()
    slots_dates = State()
    slots_weekdays = State()
    slots_hours = State()
    slots_length = State()
    slots_time_zone = State()
    slots_preview = State()
    csv_upload = State()


class Relay(StatesGroup):
    chatting = State()  # the patient's messages go to the duty doctors' chat


class BroadcastForm(StatesGroup):
    """A coordinator writing a broadcast: the message, who gets it, the confirmation."""

    content = State()
    audience = State()
    confirm = State()


class ExportForm(StatesGroup):
    period = State()  # the date range of the applications export


class ReferralActivation(StatesGroup):
    """A patient who opened a referral's personal link, until the phone is confirmed."""

    consent = State()
    contact = State()  # the Telegram contact must carry the referral's phone


class ReferralImport(StatesGroup):
    upload = State()  # a coordinator is asked for a referral table (after /import)


class AccountLink(StatesGroup):
    confirm = State()  # a code from the other messenger entered: move here? (services.links)
