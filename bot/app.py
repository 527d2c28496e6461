"""Factories of the composition root shared by every process: the services, the Bot and the
outbox sender with its job handlers (``bot.delivery``). Nothing here imports the handlers: the
Dispatcher is built by ``bot.dispatcher``, for the bot process only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.api_session import JsonBodySession, NotModifiedIsSuccess
from bot.catalog import Catalog
from bot.config import Settings
from bot.delivery.applications import ApplicationNotifier
from bot.delivery.booking import BookingNotifier
from bot.delivery.broadcasts import BroadcastProgressNotifier
from bot.delivery.consultation_day import ConsultationDayNotifier
from bot.delivery.relay import DutyDesk
from bot.delivery.schedule import SlotRemovedNotifier
from bot.delivery.sla import SlaNotifier
from bot.delivery.staff_alerts import StaffAlertNotifier
from bot.i18n import variants
from bot.pseudonyms import Pseudonymizer
from bot.sending import RetryingRequests
from bot.services.applications import CARD, CARD_REFRESH, ApplicationService
from bot.services.audit import AuditService
from bot.services.booking import BOOKING_NOTICE, BookingService
from bot.services.broadcasts import BROADCAST_PROGRESS, BroadcastService
from bot.services.clock import Clock, utc_now
from bot.services.documents import DocumentService
from bot.services.links import LinkService
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
from bot.storage.db import SessionFactory, create_session_factory


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
    links: LinkService = field(init=False)

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
        self.links = LinkService(self.sessions, self.clock)
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
        session=JsonBodySession(api=api),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )
    bot.session.middleware(RetryingRequests(settings.telegram_outage_seconds))
    bot.session.middleware(NotModifiedIsSuccess())
    return bot
