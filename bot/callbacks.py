"""Every CallbackData class, with short prefixes. Fields are validated when unpacked; the
handlers still re-check that the object belongs to the user pressing the button."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


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
    page: int


class RegionPickCb(CallbackData, prefix="rr"):
    code: int


class TimeZonePickCb(CallbackData, prefix="tz"):
    region: int
    index: int


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


class ProfileCb(CallbackData, prefix="pf"):
    action: ProfileAction
    field: Field | None = None


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
    id: int


class DocTypeCb(CallbackData, prefix="dt"):
    batch: int
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
    id: int = 0
    code: str = ""


class TimeAnswer(StrEnum):
    CONFIRM = "c"
    OTHER = "o"


class TimeAnswerCb(CallbackData, prefix="ta"):
    consultation: int
    answer: TimeAnswer


class ConclusionCb(CallbackData, prefix="cn"):
    id: int


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
    app: int


class CalendarCb(CallbackData, prefix="cl"):
    app: int
    month: int  # yyyymm shown
    day: int = 0  # yyyymmdd picked, 0 = navigation only


class TimeSlotCb(CallbackData, prefix="ts"):
    app: int
    day: int  # yyyymmdd
    minutes: int  # from midnight, center's time zone
    confirm: bool = False


class RequestDocCb(CallbackData, prefix="rq"):
    app: int
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
    doctor: int = 0  # 0 = any doctor (earliest available)
    day: int = 0  # yyyymmdd in the patient's zone
    slot: int = 0


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
    id: int
    reason: CancelReason | None = None
    day: int = 0
    slot: int = 0


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
    doctor: int = 0
    slot: int = 0
    page: int = 0
    booked: bool = False  # REMOVE_YES: the coordinator was told the slot is booked


class ScheduleStep(StrEnum):
    """Buttons inside the coordinator's dialogues (adding a doctor, making slots)."""

    SPECIALTY = "sp"
    SKIP = "sk"
    SAVE = "sv"
    DOCTOR = "dr"
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
    value: int = 0
    index: int = 0
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
    value: int = 0


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
    broadcast: int


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
    id: int  # the consultation
    minutes: int = 0  # which reminder (minutes before the start)


class ConsultDocsCb(CallbackData, prefix="cd"):
    """A doctor asks for the patient's documents on a consultation's heads-up."""

    id: int  # the consultation


class NoShowCb(CallbackData, prefix="ns"):
    """A doctor marks that the patient did not attend (on the heads-up message)."""

    id: int  # the consultation
