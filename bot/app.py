"""Factories of the composition root: the Bot, the Dispatcher and the services they share."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.strategy import FSMStrategy
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.api_session import NotModifiedIsSuccess
from bot.catalog import Catalog
from bot.config import Settings
from bot.consultation_day import ConsultationDayNotifier
from bot.fsm.storage import SQLStorage
from bot.fsm.unit import DialogueUnitMiddleware
from bot.handlers import build_root_router
from bot.handlers.broadcasts import BroadcastProgressNotifier
from bot.handlers.errors import CallbackAnswerMiddleware
from bot.handlers.relay import DutyDesk
from bot.handlers.schedule import SlotRemovedNotifier
from bot.i18n import N_, LocaleMiddleware, variants
from bot.middlewares import InFlightMiddleware, PatientMiddleware
from bot.notifications import ApplicationNotifier, BookingNotifier
from bot.pseudonyms import Pseudonymizer, tg
from bot.sending import RetryingRequests
from bot.services.applications import CARD, CARD_REFRESH, ApplicationService
from bot.services.audit import AuditService
from bot.services.booking import BOOKING_NOTICE, BookingService
from bot.services.broadcasts import BROADCAST_PROGRESS, BroadcastService
from bot.services.clock import Clock, utc_now
from bot.services.documents import DocumentService
from bot.services.my_data import MyDataService
from bot.services.outbox import Limits, OutboxSender
from bot.services.patients import PatientService
from bot.services.referrals import COLUMNS, ReferralService
from bot.services.relay import RelayService
from bot.services.reminder_plan import ReminderPlan
from bot.services.reminders import ReminderService
from bot.services.retention import RetentionService
from bot.services.schedule import SLOT_REMOVED, ScheduleService
from bot.services.sla import SlaService
from bot.services.staff_alerts import STAFF_ALERT, StaffAlerts
from bot.services.stats import StatsService
from bot.sla_notifier import SlaNotifier
from bot.staff_access import StaffAccess
from bot.staff_chats import StaffAlertNotifier
from bot.storage.db import SessionFactory, create_session_factory
from bot.uploads import UploadCoordinator

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What handlers receive by name (Dispatcher workflow data)."""

    settings: Settings
    catalog: Catalog
    sessions: SessionFactory
    i18n: I18n
    clock: Clock = utc_now
    audit: AuditService = field(init=False)
    patients: PatientService = field(init=False)
    my_data: MyDataService = field(init=False)
    documents: DocumentService = field(init=False)
    applications: ApplicationService = field(init=False)
    booking: BookingService = field(init=False)
    relay: RelayService = field(init=False)
    schedule: ScheduleService = field(init=False)
    sla: SlaService = field(init=False)
    retention: RetentionService = field(init=False)
    broadcasts: BroadcastService = field(init=False)
    statistics: StatsService = field(init=False)
    referrals: ReferralService = field(init=False)
    reminders: ReminderService = field(init=False)

    def __post_init__(self) -> None:
        plan = ReminderPlan.from_minutes(
            self.settings.reminder_offsets_minutes,
            self.settings.doctor_headsup_minutes,
            self.settings.duty_chat_id,
        )
        self.audit = AuditService(
            self.sessions,
            self.clock,
            Pseudonymizer(self.settings.pseudonym_secret),
            retention_days=self.settings.audit_retention_days,
        )
        self.patients = PatientService(
            self.sessions, self.settings.files_dir, self.clock, self.audit
        )
        self.my_data = MyDataService(self.sessions, self.clock)
        self.documents = DocumentService(
            self.sessions,
            self.settings.files_dir,
            self.clock,
            max_bytes=self.settings.max_download_bytes,
            quiet=timedelta(seconds=self.settings.upload_quiet_seconds),
            type_from_caption=self.catalog.document_type_from_text,
        )
        self.applications = ApplicationService(
            self.sessions, self.catalog, self.clock, self.settings.video_base_url, plan
        )
        self.booking = BookingService(
            self.sessions,
            self.clock,
            video_base_url=self.settings.video_base_url,
            max_future_bookings=self.settings.max_duty_bookings,
            cancel_cutoff=timedelta(hours=self.settings.cancel_cutoff_hours),
            duty_chat_id=self.settings.duty_chat_id,
            reminders=plan,
        )
        self.relay = RelayService(self.sessions, self.clock, self.settings.duty_chat_id)
        self.schedule = ScheduleService(self.sessions, self.catalog, self.clock)
        self.sla = SlaService(
            self.sessions,
            self.clock,
            sla_days=self.settings.sla_days,
            coordinator_ids=self.settings.coordinator_ids,
            digest_time=self.settings.digest_time,
            digest_zone=ZoneInfo(self.settings.digest_time_zone),
        )
        self.retention = RetentionService(
            self.sessions, self.clock, retention_days=self.settings.retention_days, audit=self.audit
        )
        self.broadcasts = BroadcastService(
            self.sessions,
            self.clock,
            per_second=self.settings.broadcast_per_second,
            progress_every=timedelta(seconds=self.settings.broadcast_progress_seconds),
        )
        self.statistics = StatsService(
            self.sessions, self.clock, overdue_after=timedelta(days=self.settings.sla_days)
        )
        self.referrals = ReferralService(
            self.sessions,
            self.catalog,
            self.clock,
            link_days=self.settings.referral_link_days,
            # A table's headers are recognised in every language of the bot.
            header_names={c: variants(self.i18n, f"referral.col.{c.value}") for c in COLUMNS},
        )
        self.reminders = ReminderService(
            self.sessions,
            self.clock,
            plan,
            coordinator_ids=self.settings.coordinator_ids,
            no_show_alert_after=self.settings.no_show_alert_after,
        )

    @classmethod
    def create(
        cls, settings: Settings, catalog: Catalog, engine: AsyncEngine, i18n: I18n, clock: Clock
    ) -> Services:
        return cls(settings, catalog, create_session_factory(engine), i18n, clock)


def build_outbox(services: Services, bot: Bot) -> OutboxSender:
    """The sender of the outbox, with the job handlers that render applications' messages."""
    settings = services.settings

    async def on_blocked(patient_id: int | None, chat_id: int) -> None:
        await services.patients.mark_unreachable(patient_id, chat_id)
        await services.applications.refresh_cards(patient_id, chat_id)

    alerts = StaffAlerts(services.sessions, services.clock, settings.coordinator_ids)
    sender = OutboxSender(
        services.sessions,
        bot,
        services.clock,
        Limits(
            global_per_second=settings.outbox_global_per_second,
            per_chat_per_second=settings.outbox_per_chat_per_second,
            per_group_per_minute=settings.outbox_per_group_per_minute,
        ),
        on_blocked=on_blocked,
        on_staff_failure=alerts.report,
    )
    staff_alerts = StaffAlertNotifier(
        services.catalog, services.i18n, settings.default_locale, settings.duty_chat_id
    )
    sender.register(STAFF_ALERT, staff_alerts.notify)
    notifier = ApplicationNotifier(
        services.sessions,
        services.applications,
        services.documents,
        services.catalog,
        services.i18n,
        services.clock,
        settings.default_locale,
        alerts,
    )

    async def post_in_topic(bot: Bot, patient_id: int, text: str) -> int | None:
        desk = DutyDesk(
            bot=bot,
            relay=services.relay,
            patients=services.patients,
            i18n=services.i18n,
            catalog=services.catalog,
            clock=services.clock,
            staff_locale=settings.default_locale,
        )
        return await desk.post_in_topic(patient_id, text)

    sender.register(
        BOOKING_NOTICE,
        BookingNotifier(
            services.booking, services.catalog, services.i18n, settings, post_in_topic
        ).notify,
    )
    sender.register(
        SLOT_REMOVED,
        SlotRemovedNotifier(services.schedule, services.i18n, settings.default_locale).notify,
    )
    sla = SlaNotifier(services.sla, services.catalog, services.i18n, settings.default_locale)
    for kind, handler in sla.handlers().items():
        sender.register(kind, handler)
    progress = BroadcastProgressNotifier(
        services.broadcasts, services.catalog, services.i18n, settings.default_locale
    )
    sender.register(BROADCAST_PROGRESS, progress.notify, idempotent=True)  # an edit
    day = ConsultationDayNotifier(
        services.reminders,
        services.relay,
        services.patients,
        services.catalog,
        services.i18n,
        services.clock,
        settings.default_locale,
        services.documents,
    )
    for kind, handler in day.handlers().items():
        sender.register(kind, handler)  # a reminder or a file is never repeated blindly
    for kind, handler in notifier.handlers().items():
        # A card posted or edited again is harmless (post_card checks what is already there);
        # a notice to a patient is never repeated blindly after a crash.
        sender.register(kind, handler, idempotent=kind in {CARD, CARD_REFRESH})
    return sender


def create_bot(settings: Settings) -> Bot:
    api = TelegramAPIServer.from_base(
        settings.telegram_api_url, is_local=settings.telegram_api_local
    )
    bot = Bot(
        token=settings.bot_token.get_secret_value(),
        session=AiohttpSession(api=api),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )
    bot.session.middleware(RetryingRequests(settings.telegram_outage_seconds))
    bot.session.middleware(NotModifiedIsSuccess())
    return bot


def create_dispatcher(
    services: Services,
    bot: Bot,
    storage: BaseStorage | None = None,
    isolation: BaseEventIsolation | None = None,
    *,
    root: Router | None = None,  # all routers by default; MAX: the patients' only
) -> Dispatcher:
    uploads = UploadCoordinator(
        bot,
        services.documents,
        services.catalog,
        services.i18n,
        services.clock,
        on_document=services.applications.documents_added,
    )
    sender = build_outbox(services, bot)
    dp = Dispatcher(
        storage=storage or SQLStorage(services.sessions),
        events_isolation=isolation or SimpleEventIsolation(),
        # A doctor's half-done step (a decline reason, a typed time) belongs to the topic of
        # the card it was started on: text in another patient's topic is not taken for it.
        fsm_strategy=FSMStrategy.USER_IN_TOPIC,
        settings=services.settings,
        catalog=services.catalog,
        sessions=services.sessions,
        clock=services.clock,
        patients=services.patients,
        documents=services.documents,
        applications=services.applications,
        booking=services.booking,
        relay=services.relay,
        schedule=services.schedule,
        broadcasts=services.broadcasts,
        statistics=services.statistics,
        referrals=services.referrals,
        reminders=services.reminders,
        audit=services.audit,
        my_data=services.my_data,
        uploads=uploads,
        outbox=sender,
        access=StaffAccess(),
    )
    dp.startup.register(uploads.resume)
    dp.shutdown.register(uploads.close)
    in_flight = InFlightMiddleware()
    dp["in_flight"] = in_flight
    dp.update.outer_middleware(DialogueUnitMiddleware(dp.fsm.storage))
    dp.update.outer_middleware(in_flight)
    dp.update.outer_middleware(PatientMiddleware(services.patients))
    LocaleMiddleware(services.i18n).setup(dp)
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    dp.include_router(root or build_root_router(services.i18n))
    return dp


COMMANDS = {
    "start": N_("command.start"),
    "profile": N_("command.profile"),
    "help": N_("command.help"),
    "cancel": N_("command.cancel"),
}

#: Commands of coordinators (COORDINATOR_IDS), shown in their own chats' menus only.
COORDINATOR_COMMANDS = {
    "schedule": N_("command.schedule"),
    "template": N_("command.template"),
    "import": N_("command.import"),
    "relink": N_("command.relink"),
    "broadcast": N_("command.broadcast"),
    "stats": N_("command.stats"),
    "export": N_("command.export"),
    "audit": N_("command.audit"),
}


async def set_commands(bot: Bot, i18n: I18n, coordinator_ids: Iterable[int] = ()) -> None:
    """The commands menu in Russian (also the default) and English; coordinators also see their
    own commands, in their private chat only (nobody else learns the admin surface exists)."""
    for language in (None, *i18n.available_locales):
        locale = language or i18n.default_locale
        commands = [
            BotCommand(command=name, description=i18n.gettext(key, locale=locale))
            for name, key in COMMANDS.items()
        ]
        await bot.set_my_commands(
            commands, scope=BotCommandScopeAllPrivateChats(), language_code=language
        )
    locale = i18n.default_locale
    staff_menu = [
        BotCommand(command=name, description=i18n.gettext(key, locale=locale))
        for name, key in (COMMANDS | COORDINATOR_COMMANDS).items()
    ]
    for user_id in sorted(coordinator_ids):
        try:
            await bot.set_my_commands(staff_menu, scope=BotCommandScopeChat(chat_id=user_id))
        except (TelegramBadRequest, TelegramForbiddenError):
            # Telegram knows the chat only once the coordinator has started the bot.
            log.info("commands menu: coordinator %s has no chat with the bot yet", tg(user_id))
