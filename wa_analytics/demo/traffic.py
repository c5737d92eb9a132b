"""A deterministic, realistic stretch of WhatsApp traffic, as webhook deliveries plus the truth.

Contacts in several countries write in bursts at their local busy hours; agents answer after
seconds to hours (some in the same second, some never); businesses send templates nobody asked
for; Meta reports statuses (some failed), batches items, retries deliveries and delivers some
late; the CRM reports sends (with the agent) and echoes some inbound messages and statuses, with
phone numbers written the way people write them. Who a contact is changes form too: Meta spells
Mexican and old Brazilian mobiles its own way, some contacts carry a business-scoped user id
(BSUID), some write with a username and no number at first, some change number; some replies are
sent from the WhatsApp Business app (Meta's message echoes), and the business's past
conversations arrive once as a history backfill. ``Traffic.truth`` is what the pipeline must end
up with, whichever sources reported each fact, under one id per person (the first they were seen
with): the basis of the end-to-end tests.
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import phonenumbers

WHATSAPP_PATH = "/webhooks/whatsapp"
BUSINESS_APP = "business_app"
CRM_PATH = "/webhooks/crm"
BUSINESS = {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"}
# (region, UTC offset in hours used for the contact's local busy hours)
REGIONS = [("US", -5), ("GB", 0), ("BR", -3), ("IN", 5.5), ("DE", 1), ("MX", -6), ("ES", 1)]
INBOUND_TYPES = [
    ("text", 60),
    ("image", 8),
    ("audio", 6),
    ("video", 2),
    ("document", 3),
    ("sticker", 4),
    ("location", 2),
    ("contacts", 1),
    ("interactive", 5),
    ("button", 4),
    ("reaction", 3),
    ("unsupported", 2),
]
# Local hours weighted like a support inbox: mornings, after lunch, evenings.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 14, 20, 24, 22, 16, 18, 20, 20, 18, 14, 14, 16, 12, 8, 4, 2]
# Campaigns the CRM sends templates in: (campaign id, name, template (name, language, category)).
# Some templates go out with no campaign (a transactional update).
CAMPAIGNS = [
    ("cmp-2026-spring", "Spring sale", ("spring_sale", "en_US", "marketing")),
    ("cmp-2026-restock", "Back in stock", ("back_in_stock", "es", "marketing")),
    ("cmp-2026-orders", "Order updates", ("order_update", "en_US", "utility")),
    (None, None, ("order_update", "en_US", "utility")),
]
# Click-to-WhatsApp ads (and a Facebook post's WhatsApp button): id, type, headline, link.
ADS = [
    ("120210000000001", "ad", "Free shipping this week", "https://fb.me/free-shipping"),
    ("120210000000002", "ad", "Talk to a stylist", "https://fb.me/stylist"),
    ("120210000000003", "post", "New arrivals", "https://www.facebook.com/shop/posts/3"),
]
# What the contact does with a campaign's first sends (campaign_send's rolls): clicks, writes
# back, writes back too late, stops and resumes marketing messages, stops them; the last one
# fails.
FIRST_OUTCOMES = [0.1, 0.3, 0.37, 0.44, 0.5, 0.99]
# Meta's free entry point window after a conversation from an ad: replies are free for 72 hours.
FREE_ENTRY_POINT = timedelta(hours=72)
FAILURES = [
    (131026, "Message undeliverable"),
    (131047, "Re-engagement message"),
    (131049, "Meta chose not to deliver"),
]


@dataclass(frozen=True)
class Delivery:
    path: str
    body: bytes


@dataclass(frozen=True)
class TruthMessage:
    message_id: str
    user_id: str
    direction: str
    occurred_at: datetime
    agent_id: str | None = None
    message_type: str = "text"
    is_backfill: bool = False
    # A template send: (name, language, category) and (campaign id, name); a reply: the message
    # it names (a button click); a contact's message after an ad: the ad's id.
    template: tuple | None = None
    campaign: tuple | None = None
    context_message_id: str | None = None
    ad_id: str | None = None


@dataclass(frozen=True)
class TruthStatus:
    message_id: str
    status: str
    occurred_at: datetime
    # Meta's pricing object on the status (None when it carries none) and the contact's region.
    pricing: tuple | None = None  # (billable, category, type)
    region: str | None = None


@dataclass(frozen=True)
class TruthPreference:
    user_id: str
    preference: str  # stop or resume (marketing messages)
    occurred_at: datetime


@dataclass
class Truth:
    messages: list[TruthMessage] = field(default_factory=list)
    statuses: list[TruthStatus] = field(default_factory=list)
    preferences: list[TruthPreference] = field(default_factory=list)


@dataclass
class Traffic:
    deliveries: list[Delivery]
    truth: Truth
    stats: dict

    def counts(self) -> dict:
        return {"deliveries": len(self.deliveries), **self.stats}


@dataclass
class _Contact:
    wa_id: str
    e164: str
    crm_phone: str
    utc_offset: float
    name: str
    region: str = ""
    # The business-scoped user id Meta sends beside (or, with number_hidden, instead of) the number.
    bsuid: str | None = None
    number_hidden: bool = False
    # The id the person was first seen with: what the pipeline must count them under.
    truth_id: str | None = None
    # Until when replies are free: 72 hours after the contact's latest message from an ad.
    free_entry_point_until: datetime | None = None

    def seen_as(self) -> str:
        """The person's id in the truth, fixed at their first event."""
        if self.truth_id is None:
            self.truth_id = self.bsuid if self.number_hidden else self.e164
        return self.truth_id


@dataclass(order=True)
class _Report:
    """One webhook delivery waiting to be sent, ordered by when its sender would send it."""

    send_at: datetime
    seq: int
    path: str = field(compare=False)
    payload: dict = field(compare=False)


class _Generator:
    def __init__(self, seed: int, start: datetime, days: int, agents: int):
        self.rng = random.Random(seed)
        self.start, self.days = start, days
        self.agents = [f"agent-{i + 1}" for i in range(agents)]
        self.reports: list[_Report] = []
        self.meta_items: list[tuple[datetime, str, dict, _Contact]] = []
        self.outbound_reports: dict[str, list] = {}
        self.messages: dict[str, TruthMessage] = {}
        self.statuses: dict[tuple[str, str], TruthStatus] = {}
        self.preferences: list[TruthPreference] = []
        self.stats = {
            "contacts": 0,
            "inbound_messages": 0,
            "replies": 0,
            "template_sends": 0,
            "statuses": 0,
            "failed": 0,
            "quarantined_items": 0,
            "business_app_replies": 0,
            "number_changes": 0,
            "backfilled_messages": 0,
            "campaign_sends": 0,
            "button_clicks": 0,
            "opt_outs": 0,
            "ad_referrals": 0,
        }
        self.seq = 0
        self.numbers: set[str] = set()

    # -- identities ------------------------------------------------------------------------
    def contact(self, index: int) -> _Contact:
        region, offset = REGIONS[index % len(REGIONS)]
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        while True:
            national = str(example.national_number)
            tail = f"{self.rng.randrange(10**4):04d}"
            candidate = phonenumbers.PhoneNumber(
                country_code=example.country_code, national_number=int(national[:-4] + tail)
            )
            e164 = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
            # Each person their own number: a number change must not land on someone else's.
            if phonenumbers.is_valid_number(candidate) and e164 not in self.numbers:
                self.numbers.add(e164)
                break
        styles = [
            phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
            e164,
            e164[1:],
            "00" + e164[1:],
            phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.RFC3966),
        ]
        contact = _Contact(
            _whatsapp_spelling(e164, self.rng), e164, self.rng.choice(styles), offset,
            f"Contact {index}", region,
        )  # fmt: skip
        if self.rng.random() < 0.3:
            contact.bsuid = self.bsuid(region)
            contact.number_hidden = self.rng.random() < 0.3  # a username, no number shared yet
        return contact

    def bsuid(self, region: str) -> str:
        return f"{region}.{self.rng.getrandbits(60)}"

    def message_id(self) -> str:
        return f"wamid.HBgL{self.rng.getrandbits(96):024X}"

    def local_time(self, contact: _Contact, day: int) -> datetime:
        hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        local = self.start + timedelta(days=day, hours=hour, seconds=self.rng.randrange(3600))
        return local - timedelta(hours=contact.utc_offset)

    # -- reports -----------------------------------------------------------------------------
    def report(self, send_at: datetime, path: str, payload: dict) -> None:
        self.seq += 1
        self.reports.append(_Report(send_at, self.seq, path, payload))

    def inbound(
        self,
        contact: _Contact,
        at: datetime,
        message_type: str | None = None,
        context: str | None = None,
        ad: tuple | None = None,
    ) -> None:
        """A contact's message; ``context`` the message it replies to (a button click on a
        template), ``ad`` the click-to-WhatsApp ad it came from (Meta's referral)."""
        if message_type is None and self.stats["inbound_messages"] < len(INBOUND_TYPES):
            # The first messages show every type once, however little traffic is asked for.
            message_type = INBOUND_TYPES[self.stats["inbound_messages"]][0]
        message_type = message_type or self.rng.choices(*zip(*INBOUND_TYPES, strict=True))[0]
        message_id = self.message_id()
        self.messages[message_id] = TruthMessage(
            message_id, contact.seen_as(), "inbound", at, message_type=message_type,
            context_message_id=context, ad_id=ad[0] if ad else None,
        )  # fmt: skip
        self.stats["inbound_messages"] += 1
        item = _meta_message(message_id, contact, at, message_type, self.rng)
        if context:
            item["context"] = {"from": BUSINESS["display_phone_number"], "id": context}
        if ad:
            contact.free_entry_point_until = at + FREE_ENTRY_POINT
            self.stats["ad_referrals"] += 1
            item["referral"] = {"source_url": ad[3], "source_id": ad[0], "source_type": ad[1],
                                "headline": ad[2], "body": "Write to us on WhatsApp",
                                "media_type": "image", "image_url": "https://fb.me/i.jpg",
                                "ctwa_clid": f"ARA{self.rng.getrandbits(64):016x}"}  # fmt: skip
        self.meta_items.append((at, "messages", item, contact))
        if self.rng.random() < 0.3 and not contact.number_hidden:  # the CRM relays some too
            self.report(
                at + timedelta(seconds=self.rng.randint(1, 20)),
                CRM_PATH,
                self.crm(
                    contact,
                    "whatsapp.message.received",
                    message_id,
                    at,
                    text="Hi! Any news on my order?",
                ),
            )

    def outbound(
        self,
        contact: _Contact,
        at: datetime,
        agent: str | None,
        campaign: tuple | None = None,
        fails: bool = False,
    ) -> str:
        """A message to the contact: an agent's reply, or (``campaign``: CAMPAIGNS' item) a
        template the CRM sends; its id. Some fail (all that ``fails`` says must)."""
        message_id = self.message_id()
        reported = []
        if campaign:
            # The CRM reports every template it sends, with the template and the campaign.
            reported.append(at)
            payload = self.crm(contact, "whatsapp.message.sent", message_id, at)
            payload["message"] |= {"type": "template", "template": dict(
                zip(("name", "language", "category"), campaign[2], strict=True))}  # fmt: skip
            if campaign[0]:
                payload["campaign"] = {"id": campaign[0], "name": campaign[1]}
            self.report(at + timedelta(seconds=self.rng.randint(0, 5)), CRM_PATH, payload)
        pricing = self.pricing(contact, at, campaign)
        if agent and not contact.number_hidden and self.rng.random() < 0.15:
            self.echo(contact, message_id, at)
            return message_id
        if agent and not contact.number_hidden and self.rng.random() < 0.8:
            # The CRM reports the send; otherwise the reply is known only from Meta's statuses.
            reported.append(at)
            self.report(
                at + timedelta(seconds=self.rng.randint(0, 5)),
                CRM_PATH,
                self.crm(
                    contact,
                    "whatsapp.message.sent",
                    message_id,
                    at,
                    agent=agent,
                    text="Thanks for writing! Let me check that for you.",
                ),
            )
        sent_at = at + timedelta(seconds=self.rng.randint(0, 3))
        timeline = [("sent", sent_at)]
        if self.rng.random() < 0.05 or fails:
            timeline.append(("failed", sent_at + timedelta(seconds=self.rng.randint(1, 30))))
            self.stats["failed"] += 1
        else:
            delivered = sent_at + timedelta(seconds=self.rng.randint(1, 20))
            timeline.append(("delivered", delivered))
            if self.rng.random() < 0.8:
                timeline.append(
                    ("read", delivered + timedelta(seconds=int(self.rng.lognormvariate(5, 1.5))))
                )
        if self.rng.random() < 0.1:
            timeline = timeline[1:]  # Meta's "sent" notification never arrived
        for name, when in timeline:
            reported.append(when)
            priced = pricing if name in ("sent", "delivered") else None
            self.statuses[(message_id, name)] = TruthStatus(
                message_id, name, when, priced, contact.region
            )
            self.stats["statuses"] += 1
            self.meta_items.append(
                (when, "statuses", _meta_status(message_id, contact, when, name, priced, self.rng),
                 contact)
            )  # fmt: skip
            if self.rng.random() < 0.2 and not contact.number_hidden:  # the CRM relays some
                extra = {"status": name}
                if name == "failed":
                    extra["error"] = {"code": 131026, "title": "Message undeliverable"}
                self.report(
                    when + timedelta(seconds=self.rng.randint(1, 30)),
                    CRM_PATH,
                    self.crm(contact, "whatsapp.status.updated", message_id, when, **extra),
                )
        self.messages[message_id] = TruthMessage(
            message_id, contact.seen_as(), "outbound", min(reported), agent_id=agent,
            template=campaign[2] if campaign else None,
            campaign=campaign[:2] if campaign and campaign[0] else None,
        )  # fmt: skip
        return message_id

    def pricing(self, contact: _Contact, at: datetime, campaign: tuple | None) -> tuple:
        """Meta's pricing of a message (billable, category, type), per-message pricing: a
        template is charged at its category's rate, unless a utility template lands in an open
        customer-service window; replies are free, and so is everything within 72 hours of a
        conversation from an ad (free entry point)."""
        if contact.free_entry_point_until and at < contact.free_entry_point_until:
            return (False, campaign[2][2] if campaign else "service", "free_entry_point")
        if not campaign:
            return (False, "service", "free_customer_service")
        category = campaign[2][2]
        if category == "utility" and self.rng.random() < 0.3:
            return (False, category, "free_customer_service")
        return (True, category, "regular")

    def preference(self, contact: _Contact, at: datetime, value: str) -> None:
        """Meta's user_preferences webhook: the contact stopped (or resumed) marketing messages."""
        self.preferences.append(TruthPreference(contact.seen_as(), value, at))
        item = {"wa_id": contact.wa_id, "detail": "User requested to stop marketing messages",
                "category": "marketing_messages", "value": value,
                "timestamp": str(int(at.timestamp()))}  # fmt: skip
        if contact.bsuid:
            item["user_id"] = contact.bsuid
        self.meta_items.append((at, "user_preferences", item, contact))

    def campaign_send(self, contact: _Contact, at: datetime) -> None:
        """A template from a campaign, and what the contact does with it: clicks its button,
        writes back, stops marketing messages (and sometimes resumes them), or nothing."""
        # The first sends show each outcome once, however little traffic is asked for.
        first = self.stats["template_sends"] < len(FIRST_OUTCOMES)
        campaign = CAMPAIGNS[0] if first else self.rng.choice(CAMPAIGNS)
        roll = FIRST_OUTCOMES[self.stats["template_sends"]] if first else self.rng.random()
        fails = first and self.stats["template_sends"] == len(FIRST_OUTCOMES) - 1
        message_id = self.outbound(contact, at, None, campaign, fails)
        self.stats["template_sends"] += 1
        self.stats["campaign_sends"] += campaign[0] is not None
        later = at + timedelta(seconds=int(self.rng.lognormvariate(6.5, 1.2)))
        if roll < 0.25:
            self.inbound(contact, later, "button", context=message_id)
            self.stats["button_clicks"] += 1
        elif roll < 0.35:
            self.inbound(contact, later, "text")
        elif roll < 0.40:
            too_late = at + timedelta(hours=self.rng.randint(25, 40))
            if too_late < self.start + timedelta(days=self.days):  # no message from the future
                self.inbound(contact, too_late, "text")
        elif roll < 0.6 and campaign[2][2] == "marketing":
            self.preference(contact, later, "stop")
            self.stats["opt_outs"] += 1
            if roll < 0.45 or self.rng.random() < 0.3:
                self.preference(contact, later + timedelta(minutes=self.rng.randint(5, 300)),
                                "resume")  # fmt: skip

    def echo(self, contact: _Contact, message_id: str, at: datetime) -> None:
        """A reply a person sent from the WhatsApp Business app: Meta reports it as a message
        echo; the CRM, which sees it too, reports it as sent, with no agent."""
        self.messages[message_id] = TruthMessage(
            message_id, contact.seen_as(), "outbound", at, agent_id=BUSINESS_APP
        )
        self.stats["business_app_replies"] += 1
        echo = {"from": BUSINESS["display_phone_number"], "to": contact.wa_id, "id": message_id,
                "timestamp": str(int(at.timestamp())), "type": "text",
                "text": {"body": "On my way to check, one minute."}}  # fmt: skip
        if contact.bsuid:
            echo["to_user_id"] = contact.bsuid
        self.meta_items.append((at, "message_echoes", echo, contact))
        if self.rng.random() < 0.5:
            self.report(
                at + timedelta(seconds=self.rng.randint(1, 10)),
                CRM_PATH,
                self.crm(contact, "whatsapp.message.sent", message_id, at, text="On my way"),
            )

    def change_number(self, contact: _Contact, at: datetime, index: int) -> None:
        """The contact moves to a new number (and, with it, a new BSUID): Meta's system message
        user_changed_number says so, from the old number; later messages come from the new."""
        contact.seen_as()
        new = self.contact(index + 7 * 1000)  # another valid number of the same country
        system = {"body": f"User {contact.name} changed from {contact.wa_id} to {new.wa_id}",
                  "wa_id": new.wa_id, "type": "user_changed_number"}  # fmt: skip
        message = {"from": contact.wa_id, "id": self.message_id(),
                   "timestamp": str(int(at.timestamp())), "type": "system"}  # fmt: skip
        if contact.bsuid:
            new_bsuid = self.bsuid(contact.bsuid[:2])
            system |= {"user_id": new_bsuid, "previous_user_id": contact.bsuid}
            message["from_user_id"] = contact.bsuid
            contact.bsuid = new_bsuid
        message["system"] = system
        self.meta_items.append((at, "messages", message, None))
        contact.wa_id, contact.e164, contact.crm_phone = new.wa_id, new.e164, new.crm_phone
        contact.number_hidden = False
        self.stats["number_changes"] += 1

    def history(self, contacts: list[_Contact]) -> None:
        """The business's past conversations with these contacts, from the WhatsApp Business
        app, sent once when the number joins coexistence (at ``start``): one history webhook,
        its messages before that. One message of the last thread is also reported live (on the
        day of joining Meta's two reports overlap): it counts as live."""
        threads = []
        for number, contact in enumerate(contacts):
            at = self.start - timedelta(days=self.rng.randint(3, 40), hours=self.rng.randint(0, 12))
            messages, turns = [], self.rng.randint(2, 5)
            for turn in range(turns):
                inbound = turn % 2 == 0
                message_id = self.message_id()
                live = inbound and number == len(contacts) - 1 and turn == (turns - 1) // 2 * 2
                if live:
                    at = self.start + timedelta(minutes=30)
                self.messages[message_id] = TruthMessage(
                    message_id, contact.seen_as(), "inbound" if inbound else "outbound", at,
                    agent_id=None if inbound else BUSINESS_APP, is_backfill=not live,
                )  # fmt: skip
                item = {"from": contact.wa_id if inbound else BUSINESS["display_phone_number"],
                        "id": message_id, "timestamp": str(int(at.timestamp())), "type": "text",
                        "text": {"body": "Do you have it in blue?" if inbound else "We do!"},
                        "history_context": {"status": "READ"}}  # fmt: skip
                if not inbound:
                    item["to"] = contact.wa_id
                messages.append(item)
                if live:
                    live_item = {k: v for k, v in item.items() if k != "history_context"}
                    self.meta_items.append((at, "messages", live_item, contact))
                    self.stats["inbound_messages"] += 1
                    break
                at += timedelta(minutes=self.rng.randint(2, 240))
            threads.append({"id": contact.wa_id, "messages": messages})
            self.stats["backfilled_messages"] += len(messages)
        value = {"messaging_product": "whatsapp", "metadata": BUSINESS,
                 "history": [{"metadata": {"phase": 0, "chunk_order": 1, "progress": 100},
                              "threads": threads}]}  # fmt: skip
        change = {"field": "history", "value": value}
        self.report(self.start + timedelta(hours=1), WHATSAPP_PATH, {
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [change]}],
        })  # fmt: skip

    def crm(
        self,
        contact: _Contact,
        event: str,
        message_id: str,
        at: datetime,
        text: str = "",
        agent: str | None = None,
        **extra,
    ) -> dict:
        payload = {
            "event": event,
            "timestamp": self.crm_time(at),
            "contact": {"phone": contact.crm_phone, "name": contact.name},
            "message": {"id": message_id, "type": "text", "text": text or None, "media": None},
        }
        if agent:
            payload["agent"] = {"id": agent, "name": agent.replace("-", " ").title()}
        payload.update(extra)
        return payload

    def crm_time(self, at: datetime):
        style = self.rng.randrange(4)
        if style == 0:
            return int(at.timestamp())
        if style == 1:
            return at.strftime("%Y-%m-%dT%H:%M:%SZ")
        offset = timedelta(hours=self.rng.choice([-3, 5.5, 1]))
        return at.astimezone(UTC).astimezone(_tz(offset)).isoformat()

    # -- the story -----------------------------------------------------------------------------
    def conversation(self, contact: _Contact, at: datetime) -> None:
        # Some conversations start from a click-to-WhatsApp ad: its first message says which.
        ad = self.rng.choice(ADS) if self.rng.random() < 0.15 else None
        for _ in range(self.rng.choice([1, 1, 1, 2, 2, 3])):
            for burst_index in range(self.rng.choice([1, 1, 1, 2, 2, 3, 4])):  # a burst
                if burst_index:
                    at += timedelta(seconds=self.rng.randint(3, 90))
                self.inbound(contact, at, ad=ad)
                ad = None
            if self.rng.random() < 0.12:
                return  # nobody answers: the wait stays open
            # Some replies land in the same second as the message they answer.
            delay = 0 if self.rng.random() < 0.1 else int(self.rng.lognormvariate(5.2, 1.4))
            at += timedelta(seconds=delay)
            agent = self.rng.choice(self.agents)
            self.outbound(contact, at, agent)
            self.stats["replies"] += 1
            if self.rng.random() < 0.3:  # a follow-up from the agent answers nothing new
                at += timedelta(seconds=self.rng.randint(5, 120))
                self.outbound(contact, at, agent)
            at += timedelta(seconds=self.rng.randint(30, 3 * 3600))

    def build(self, contacts: int) -> Traffic:
        people = [self.contact(index) for index in range(contacts)]
        # The business's past conversations, from before it joined (its first contacts').
        self.history([c for c in people[: max(1, contacts // 10)] if not c.number_hidden])
        for index, contact in enumerate(people):
            self.stats["contacts"] += 1
            # More first contacts on later days: the base grows.
            first_day = min(self.days - 1, int(self.rng.triangular(0, self.days, self.days)))
            if self.rng.random() < 0.35 and not contact.number_hidden:  # a template first
                # Hours before the contact's first conversation: some a day before, too early
                # for that conversation to count as a reply to the template.
                hours = self.rng.choice([1, 2, 6, 30])
                self.campaign_send(
                    contact, self.local_time(contact, first_day) - timedelta(hours=hours)
                )
            days = sorted(
                {first_day}
                | {self.rng.randrange(first_day, self.days) for _ in range(self.rng.randrange(3))}
            )
            changes_number = len(days) > 1 and self.rng.random() < 0.25
            for number, day in enumerate(days):
                at = self.local_time(contact, day)
                if number == len(days) - 1 and contact.number_hidden and len(days) > 1:
                    contact.number_hidden = False  # they share their number at last
                if number == len(days) - 1 and changes_number:
                    self.change_number(contact, at - timedelta(hours=1), index)
                self.conversation(contact, at)
        for _ in range(max(1, contacts // 100)):
            for phone in ("12345", "not-a-number"):
                at = self.start + timedelta(days=self.rng.randrange(self.days), hours=12)
                bad = _Contact("", "", phone, 0, "Nobody")
                self.report(
                    at,
                    CRM_PATH,
                    self.crm(bad, "whatsapp.message.received", self.message_id(), at, text="?"),
                )
                self.stats["quarantined_items"] += 1
        self.batch_meta_items()
        return Traffic(
            self.order_deliveries(),
            Truth(
                sorted(self.messages.values(), key=lambda m: (m.occurred_at, m.message_id)),
                sorted(
                    self.statuses.values(), key=lambda s: (s.occurred_at, s.message_id, s.status)
                ),
                sorted(self.preferences, key=lambda p: (p.occurred_at, p.user_id)),
            ),
            self.stats,
        )

    def batch_meta_items(self) -> None:
        """Meta sends most items alone but batches some: several items, changes or entries."""
        items = sorted(self.meta_items, key=lambda item: (item[0], item[1]))
        i = 0
        while i < len(items):
            size = 1 if self.rng.random() < 0.7 else self.rng.randint(2, 6)
            group = items[i : i + size]
            i += size
            send_at = max(at for at, *_ in group) + timedelta(seconds=self.rng.randint(0, 3))
            changes = []
            for _, kind, item, contact in group:
                value = {"messaging_product": "whatsapp", "metadata": BUSINESS, kind: [item]}
                field = FIELDS.get(kind, "messages")
                if kind == "messages" and contact is not None:
                    value["contacts"] = [_meta_contact(contact)]
                if (
                    changes
                    and changes[-1]["field"] == field
                    and self.rng.random() < 0.6  # same change: append to its lists
                ):
                    last = changes[-1]["value"]
                    last.setdefault(kind, []).append(item)
                    last.setdefault("contacts", []).extend(value.get("contacts", []))
                else:
                    changes.append({"field": field, "value": value})
            entries = (
                [{"id": "102290129340398", "changes": [c]} for c in changes]
                if self.rng.random() < 0.3
                else [{"id": "102290129340398", "changes": changes}]
            )
            self.report(
                send_at, WHATSAPP_PATH, {"object": "whatsapp_business_account", "entry": entries}
            )

    def order_deliveries(self) -> list[Delivery]:
        reports = sorted(self.reports)
        deliveries = [Delivery(r.path, orjson.dumps(r.payload)) for r in reports]
        # Late: some deliveries (yesterday's messages, early statuses) arrive after everything.
        is_late = [self.rng.random() < 0.04 for _ in deliveries]
        late = [d for d, flag in zip(deliveries, is_late, strict=True) if flag]
        on_time = [d for d, flag in zip(deliveries, is_late, strict=True) if not flag]
        # Retries: Meta and the CRM send some deliveries again, byte for byte.
        retries = [d for d in deliveries if self.rng.random() < 0.06]
        ordered = on_time[:]
        for retry in retries:
            ordered.insert(self.rng.randrange(len(ordered) + 1), retry)
        self.stats["late_deliveries"] = len(late)
        self.stats["duplicate_deliveries"] = len(retries)
        return ordered + late


# The webhook field (entry[].changes[].field) each kind of Meta item comes in.
FIELDS = {"message_echoes": "smb_message_echoes", "user_preferences": "user_preferences"}


def _tz(offset: timedelta):
    from datetime import timezone  # noqa: PLC0415

    return timezone(offset)


def _meta_message(
    message_id: str, contact: _Contact, at: datetime, message_type: str, rng: random.Random
) -> dict:
    content = {
        "text": {
            "body": rng.choice(
                [
                    "Hi! Is my order on its way?",
                    "Olá, preciso de ajuda",
                    "Do you open on Sunday?",
                    "Thanks!",
                ]
            )
        },
        "image": {
            "id": "1",
            "mime_type": "image/jpeg",
            "sha256": "abc",
            "caption": "The box arrived damaged",
        },
        "audio": {"id": "2", "mime_type": "audio/ogg; codecs=opus", "voice": True},
        "video": {"id": "3", "mime_type": "video/mp4"},
        "document": {"id": "4", "mime_type": "application/pdf", "filename": "invoice.pdf"},
        "sticker": {"id": "5", "mime_type": "image/webp", "animated": False},
        "location": {"latitude": 40.7, "longitude": -73.9, "name": "Home", "address": "5th Ave"},
        "contacts": [{"name": {"formatted_name": "Bob"}, "phones": [{"phone": "+1 555 0100"}]}],
        "interactive": {
            "type": "button_reply",
            "button_reply": {"id": "track", "title": "Track my order"},
        },
        "button": {"text": "Talk to an agent", "payload": "AGENT"},
        "reaction": {"message_id": "wamid.earlier", "emoji": "👍"},
        "unsupported": None,
    }[message_type]
    message = {
        "from": contact.wa_id,
        "id": message_id,
        "timestamp": str(int(at.timestamp())),
        "type": message_type,
    }
    if contact.bsuid:
        message["from_user_id"] = contact.bsuid
    if contact.number_hidden:
        del message["from"]
    if content is None:
        message["errors"] = [{"code": 131051, "title": "Message type unknown"}]
    else:
        message[message_type] = content
    return message


def _meta_status(
    message_id: str,
    contact: _Contact,
    at: datetime,
    name: str,
    pricing: tuple | None,
    rng: random.Random,
) -> dict:
    status = {
        "id": message_id,
        "status": name,
        "timestamp": str(int(at.timestamp())),
        "recipient_id": contact.wa_id,
    }
    if contact.bsuid:
        status["recipient_user_id"] = contact.bsuid
    if contact.number_hidden:
        del status["recipient_id"]
    if pricing:
        billable, category, pricing_type = pricing
        status["conversation"] = {
            "id": f"conv-{rng.getrandbits(32):08x}",
            "origin": {"type": category},
        }
        status["pricing"] = {"billable": billable, "pricing_model": "PMP", "category": category,
                             "type": pricing_type}  # fmt: skip
    if name == "failed":
        code, title = rng.choice(FAILURES)
        status["errors"] = [{"code": code, "title": title}]
    return status


def _meta_contact(contact: _Contact) -> dict:
    """The value's ``contacts`` item for a contact's message: name, number and BSUID."""
    item = {"profile": {"name": contact.name}}
    if not contact.number_hidden:
        item["wa_id"] = contact.wa_id
    if contact.bsuid:
        item["user_id"] = contact.bsuid
    return item


def _whatsapp_spelling(e164: str, rng: random.Random) -> str:
    """The id WhatsApp gives a number: Mexican mobiles with '1' after 52, and some Brazilian
    mobiles (accounts older than the ninth digit) without their '9' (docs/events.md)."""
    digits = e164[1:]
    if digits.startswith("52") and len(digits) == 12:
        return "521" + digits[2:]
    if (
        digits.startswith("55")
        and len(digits) == 13
        and digits[4] == "9"
        and digits[5] in "689"
        and rng.random() < 0.5
    ):
        return digits[:4] + digits[5:]
    return digits


def default_start(days: int) -> datetime:
    """Midnight UTC ``days`` days before today: the traffic ends about now."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def generate_traffic(
    seed: int = 7,
    contacts: int = 300,
    days: int = 5,
    start: datetime | None = None,
    agents: int = 6,
) -> Traffic:
    """Deliveries in the order senders would send them (retries and late ones mixed in) and the
    truth the pipeline must end up with. The same arguments give the same traffic."""
    return _Generator(seed, start or default_start(days), days, agents).build(contacts)
