"""Every CallbackData class, with short prefixes. Fields are validated when unpacked; the
handlers still re-check that the object belongs to the user pressing the button.

Every number in callback data is bounded: a ``Number`` from 0 to 2**31 - 1 (a ``Day`` or a
``Page`` less). Row ids are INTEGER columns
(32 bits on PostgreSQL, and SQLite overflows at 2**63), and no day, minute, page or code is
bigger; so a forged number out of that range fails to unpack, and the press is refused like any
other forged button (no handler matches it) before it reaches a query."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import pydantic
from aiogram.filters.callback_data import CallbackData

MAX_NUMBER = 2**31 - 1

Number = Annotated[int, pydantic.Field(ge=0, le=MAX_NUMBER)]
Day = Annotated[int, pydantic.Field(ge=0, le=99_991_231)]  # yyyymmdd (or yyyymm), 0: none
Page = Annotated[int, pydantic.Field(ge=0, le=9_999)]


class ConsentAction(StrEnum):
    ACCEPT = "a"
    DECLINE = "d"
    FULL_TEXT = "t"
    SHORT_TEXT = "s"


class ConsentCb(CallbackData, prefix="cs"):
    action: ConsentAction


class RegAction(StrEnum):
    BACK = "b"
    CANCEL = "c"
    CANCEL_YES = "cy"
    CANCEL_NO = "cn"
    RESUME = "r"
    RESTART = "rs"


class RegNavCb(CallbackData, prefix="rg"):
    action: RegAction


class RegionPageCb(CallbackData, prefix="rp"):
    page: Page


class RegionPickCb(CallbackData, prefix="rr"):
    code: Number


class TimeZonePickCb(CallbackData, prefix="tz"):
    region: Number
    index: Number


class Field(StrEnum):
    FULL_NAME = "n"
    BIRTH_DATE = "b"
    PHONE = "p"
    REGION = "r"


class SummaryAction(StrEnum):
    EDIT = "e"
    CONFIRM = "c"


class SummaryCb(CallbackData, prefix="sm"):
    action: SummaryAction
    field: Field | None = None


class ProfileAction(StrEnum):
    SHOW = "s"
    EDIT = "e"
    LANGUAGE = "l"
    DELETE = "d"
    DELETE_YES = "dy"
    DELETE_FINAL = "df"
    MY_DATA = "md"  # «📦 Мои данные»: a copy of everything stored about the patient
    MOVE = "mv"  # «Перейти в MAX / Telegram»: a one-time code for the other messenger


class ProfileCb(CallbackData, prefix="pf"):
    action: ProfileAction
    field: Field | None = None


class LinkAction(StrEnum):
    CONFIRM = "y"
    CANCEL = "n"


class LinkCb(CallbackData, prefix="lk"):
    """Moving to this messenger with the code entered (the code itself stays in the FSM)."""

    action: LinkAction


class Language(StrEnum):
    RU = "ru"
    EN = "en"


class LanguageCb(CallbackData, prefix="lg"):
    locale: Language


class DocMenuAction(StrEnum):
    MENU = "m"
    UPLOAD = "u"
    LIST = "l"


class DocMenuCb(CallbackData, prefix="dm"):
    action: DocMenuAction


class DocAction(StrEnum):
    OPEN = "o"
    DELETE = "d"
    DELETE_YES = "y"


class DocCb(CallbackData, prefix="dc"):
    action: DocAction
    id: Number


class DocListPageCb(CallbackData, prefix="dl"):
    """A page of the patient's documents list."""

    page: Page


class DocTypeCb(CallbackData, prefix="dt"):
    batch: Number
    type: str


class AppAction(StrEnum):
    """A patient's actions on their application / consultation."""

    CENTER = "c"
    GROUP = "g"
    CHECK = "k"
    SUBMIT = "s"
    SUBMIT_ANYWAY = "sa"
    UPLOAD = "u"
    CANCEL = "x"
    BACK = "b"
    OPEN = "o"
    WITHDRAW = "w"
    WITHDRAW_YES = "wy"
    LIST = "l"


class AppCb(CallbackData, prefix="ap"):
    action: AppAction
    id: Number = 0
    code: str = ""


class AppListPageCb(CallbackData, prefix="al"):
    """A page of the patient's applications."""

    page: Page


class TimeAnswer(StrEnum):
    CONFIRM = "c"
    OTHER = "o"


class TimeAnswerCb(CallbackData, prefix="ta"):
    consultation: Number
    answer: TimeAnswer


class ConclusionCb(CallbackData, prefix="cn"):
    id: Number


class ConclusionPageCb(CallbackData, prefix="cp"):
    """A page of the patient's conclusions."""

    page: Page


class StaffAction(StrEnum):
    TAKE = "t"
    ASSIGN = "a"
    REQUEST_DOCS = "r"
    DECLINE = "d"
    INVITE = "i"
    CONCLUDE = "c"
    CANCEL = "x"
    DOCUMENTS = "v"  # re-send the patient's documents into the topic (audited as a viewing)


class StaffCb(CallbackData, prefix="st"):
    action: StaffAction
    app: Number


class CalendarCb(CallbackData, prefix="cl"):
    app: Number
    month: Day  # yyyymm shown
    day: Day = 0  # yyyymmdd picked, 0 = navigation only


class TimeSlotCb(CallbackData, prefix="ts"):
    app: Number
    day: Day  # yyyymmdd
    minutes: Number  # from midnight, center's time zone
    confirm: bool = False


class RequestDocCb(CallbackData, prefix="rq"):
    app: Number
    type: str = ""  # "" = done choosing


class DutyAction(StrEnum):
    """Booking a duty doctor (the letter's second path)."""

    START = "st"
    SPECIALTY = "s"
    DOCTOR = "d"
    EARLIEST = "e"
    DAY = "y"
    SLOT = "t"
    CONFIRM = "c"
    CANCEL = "x"


class DutyCb(CallbackData, prefix="du"):
    action: DutyAction
    specialty: str = ""
    doctor: Number = 0  # 0 = any doctor (earliest available)
    day: Day = 0  # yyyymmdd in the patient's zone
    slot: Number = 0


class DutyDoctorsPageCb(CallbackData, prefix="dd"):
    """A page of a specialty's duty doctors (its own class: buttons already sent with
    ``DutyCb`` keep their layout)."""

    specialty: str
    page: Page


class ConsultAction(StrEnum):
    """A patient's actions under "Мои консультации"."""

    LIST = "l"
    OPEN = "o"
    CANCEL = "c"
    CANCEL_REASON = "r"
    RESCHEDULE = "m"
    RESCHEDULE_DAY = "d"
    RESCHEDULE_SLOT = "s"
    RESCHEDULE_CONFIRM = "y"


class CancelReason(StrEnum):
    CANNOT = "cannot"
    ILL = "ill"
    NOT_NEEDED = "not_needed"
    OTHER = "other"


class ConsultCb(CallbackData, prefix="co"):
    action: ConsultAction
    id: Number
    reason: CancelReason | None = None
    day: Day = 0
    slot: Number = 0


class ScheduleAction(StrEnum):
    """A coordinator's duty schedule: menu, doctors, slots (outside the dialogues)."""

    MENU = "m"
    DOCTORS = "d"
    DOCTOR = "o"
    ADD_DOCTOR = "a"
    DEACTIVATE = "x"
    DEACTIVATE_YES = "xy"
    ACTIVATE = "ac"
    CREATE = "c"
    UPLOAD = "u"
    SLOTS = "s"  # choose a doctor whose slots to list
    SLOT_LIST = "l"
    REMOVE = "r"
    REMOVE_YES = "ry"


class ScheduleCb(CallbackData, prefix="sc"):
    action: ScheduleAction
    doctor: Number = 0
    slot: Number = 0
    page: Page = 0
    booked: bool = False  # REMOVE_YES: the coordinator was told the slot is booked


class ScheduleStep(StrEnum):
    """Buttons inside the coordinator's dialogues (adding a doctor, making slots)."""

    SPECIALTY = "sp"
    SKIP = "sk"
    SAVE = "sv"
    DOCTOR = "dr"
    DOCTOR_PAGE = "dp"  # value: the page of the doctors list
    WEEKDAY = "wd"
    WORKDAYS = "w5"
    EVERY_DAY = "w7"
    NEXT = "nx"
    LENGTH = "ln"
    MOSCOW = "ms"
    REGIONS = "rs"
    REGION = "rg"
    ZONE = "zn"
    CREATE = "cr"
    BACK = "b"
    CANCEL = "x"


class ScheduleStepCb(CallbackData, prefix="sd"):
    step: ScheduleStep
    value: Number = 0
    index: Number = 0
    code: str = ""


class BroadcastStep(StrEnum):
    AUDIENCE = "au"  # from the preview: choose who gets it
    KIND = "k"  # an audience kind (code)
    REGION = "r"  # value: region code
    CENTER = "c"  # code: center code
    DAYS = "d"  # value: days ahead
    CONFIRM = "ok"
    BACK = "b"  # value 1: from a sub-list back to the audience menu
    CANCEL = "x"


class BroadcastStepCb(CallbackData, prefix="bs"):
    step: BroadcastStep
    code: str = ""
    value: Number = 0


class BroadcastAction(StrEnum):
    PAUSE = "p"
    RESUME = "r"
    CANCEL = "c"
    CANCEL_YES = "cy"
    KEEP = "k"  # "no, go on" under the stop question
    REFRESH = "f"


class BroadcastCb(CallbackData, prefix="bp"):
    """A button of a broadcast's progress message (the author is re-checked)."""

    action: BroadcastAction
    broadcast: Number


class ExportPeriod(StrEnum):
    THIS_MONTH = "t"
    LAST_MONTH = "l"
    CANCEL = "x"


class ExportCb(CallbackData, prefix="ex"):
    period: ExportPeriod


class RemindAction(StrEnum):
    """The patient's answer to a consultation reminder."""

    ATTEND = "y"
    CANNOT = "n"
    MOVE = "m"


class RemindCb(CallbackData, prefix="rm"):
    action: RemindAction
    id: Number  # the consultation
    minutes: Number = 0  # which reminder (minutes before the start)


class ConsultDocsCb(CallbackData, prefix="cd"):
    """A doctor asks for the patient's documents on a consultation's heads-up."""

    id: Number  # the consultation


class NoShowCb(CallbackData, prefix="ns"):
    """A doctor marks that the patient did not attend (on the heads-up message)."""

    id: Number  # the consultation
