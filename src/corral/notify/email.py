"""Email notifications: ``Email(to=..., subject=..., template=...)``.

The subject, the plain text and the optional HTML part are Jinja2 templates, given
inline (``subject=``, ``text=``, ``html=``) or as files: ``template="report"`` loads
``report.subject.txt``, ``report.txt`` and (if present) ``report.html`` from
``NotifySettings.templates``, else from the built-in ones (``default``, the template
when none is named). A part given inline replaces the template's; an inline ``text``
without ``html`` sends text only.

Templates see ``job`` (id, queue, task, state, attempt, times, ``result``,
``error``), ``notice``, ``event``, ``result``, ``error``, ``job_url`` (the job's
dashboard page when a ``dashboard_url`` is in the context, else None), and the values
of ``NotifySettings.context`` and ``Email(context=...)``. The HTML part is
autoescaped, the text and subject are not; an undefined name is an error (a typo
fails the delivery, naming the template and the name, and is not retried).

Every attempt to deliver one notice carries the same ``Message-ID``, so a relay or
mailbox that dedupes on it shows one email.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email import errors
from email.headerregistry import AddressHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast
from urllib.parse import quote

from corral.errors import ConfigurationError
from corral.notify.base import DeliveryError, Notice, NotifySettings, Target, check_events
from corral.notify.smtp import send_message

if TYPE_CHECKING:
    import jinja2

__all__ = ["Email", "message_id", "send_digest", "send_message"]

BUILTIN_TEMPLATES: Final = Path(__file__).parent / "templates"
#: The names every template sees; ``context=`` may not redefine them.
RESERVED: Final = frozenset({"job", "notice", "event", "result", "error", "job_url"})
_PARTS: Final = ("subject", "text", "html")
_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
_TARGET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_JSON_KEYS: Final = frozenset(
    (
        "kind",
        "to",
        "cc",
        "subject",
        "template",
        "text",
        "html",
        "events",
        "sender",
        "name",
        "context",
    )
)


def _jinja() -> Any:
    try:
        import jinja2
    except ImportError:  # pragma: no cover - the notify extra is missing
        raise ConfigurationError(
            "email notifications need Jinja2: pip install 'corral[notify]'"
        ) from None
    return jinja2


def check_address(value: object, what: str) -> str:
    """One email address (``ops@example.com`` or ``Ops <ops@example.com>``), stripped;
    ConfigurationError naming ``what`` when it is not one."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{what}: an email address must be a non-empty string")
    text = value.strip()
    if "\r" in text or "\n" in text:
        raise ConfigurationError(f"{what}: {text!r} contains a line break")
    header = _parse(text)
    if header is not None and len(header.addresses) > 1:
        raise ConfigurationError(f"{what}: {text!r} is several addresses; give a list")
    # A non-ASCII local part is fine (the relay is asked for SMTPUTF8).
    defects = [
        d
        for d in getattr(header, "defects", ())
        if not isinstance(d, errors.NonASCIILocalPartDefect)
    ]
    if header is None or defects or len(header.addresses) != 1:
        raise ConfigurationError(f"{what}: {text!r} is not an email address")
    address = header.addresses[0]
    if not address.username or not address.domain:
        raise ConfigurationError(f"{what}: {text!r} is not an email address (user@domain)")
    return text


def _addresses(value: object, what: str, *, required: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{what}: give an address or a list of addresses")
    found = tuple(check_address(item, what) for item in value)
    if required and not found:
        raise ConfigurationError(f"{what}: at least one address is needed")
    return found


def _parse(text: str) -> AddressHeader | None:
    try:
        return cast(AddressHeader, HeaderRegistry()("To", text))
    except Exception:  # the stdlib parser raises IndexError on some inputs ("a@")
        return None


def _addr_spec(address: str) -> str:
    header = _parse(address)
    return str(header.addresses[0].addr_spec) if header and header.addresses else address


def message_id(token: str, sender: str) -> str:
    """A ``Message-ID`` made from ``token`` (the same token, the same id: a retry is
    recognisably the same email) with the sender's domain as its right-hand side."""
    left = token if _ATEXT.fullmatch(token) else hashlib.sha256(token.encode()).hexdigest()[:32]
    header = _parse(sender)
    domain = str(header.addresses[0].domain) if header and header.addresses else ""
    if not _ATEXT.fullmatch(domain):
        domain = "corral.invalid"
    return f"<{left}@{domain}>"


def _build(
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    text: str,
    html: str | None,
    msg_id: str,
    headers: Mapping[str, str],
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = " ".join(subject.split())  # no line breaks in a header
    message["From"] = sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = msg_id
    # RFC 3834: machine-sent, so vacation responders stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    for name, value in headers.items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


async def send_digest(
    to: str | Sequence[str],
    subject: str,
    text: str,
    settings: NotifySettings,
    *,
    message_id_token: str,
    sender: str | None = None,
    cc: str | Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
) -> None:
    """Send a plain-text email (a digest of suppressed failure notices) to ``to``.

    ``message_id_token`` makes its Message-ID (use one per digest: a retried digest is
    then the same email). ``sender`` defaults to ``settings.from_address``. Raises
    :class:`DeliveryError` like :meth:`Email.deliver`."""
    try:
        recipients = _addresses(to, "digest to", required=True)
        copies = _addresses(cc, "digest cc", required=False)
        sender = _sender(sender, settings)
    except ConfigurationError as exc:
        raise DeliveryError(str(exc), retry=False) from None
    message = _build(
        sender=sender,
        to=recipients,
        cc=copies,
        subject=subject,
        text=text,
        html=None,
        msg_id=message_id(message_id_token, sender),
        headers={"X-Corral-Event": "digest", **(headers or {})},
    )
    await send_message(message, settings)


def _sender(sender: str | None, settings: NotifySettings) -> str:
    chosen = sender or settings.from_address
    if not chosen:
        raise ConfigurationError(
            "no From address for email: set Email(sender=...), NotifySettings(sender=...) "
            "or CORRAL_EMAIL_FROM"
        )
    return check_address(chosen, "the From address")


class Email(Target):
    """Email the outcome of a job to ``to`` (and ``cc``).

    ``subject``, ``text``, ``html``: inline Jinja2 templates; ``template``: the name
    of a template in ``NotifySettings.templates`` (``name.subject.txt``,
    ``name.txt``, optional ``name.html``) or ``"default"``. ``sender``: the From
    address (default ``NotifySettings.sender`` / ``CORRAL_EMAIL_FROM``). ``name``: a
    stable identity for this target (its :attr:`key`) that survives edits to the
    recipients or the template. ``context``: extra template values (JSON).
    """

    kind: ClassVar[str] = "email"

    def __init__(
        self,
        to: str | Sequence[str],
        subject: str | None = None,
        *,
        template: str | None = None,
        text: str | None = None,
        html: str | None = None,
        events: Iterable[str] = ("completed", "failed"),
        cc: str | Sequence[str] = (),
        sender: str | None = None,
        name: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.to = _addresses(to, "Email(to=...)", required=True)
        self.cc = _addresses(cc, "Email(cc=...)", required=False)
        self.events = check_events(events, "Email")
        self.sender = None if sender is None else check_address(sender, "Email(sender=...)")
        if template is not None and (
            not isinstance(template, str) or not _TEMPLATE_NAME.fullmatch(template)
        ):
            raise ConfigurationError(
                f"Email(template=...) must be a template name like 'report', got {template!r}"
            )
        self.template = template
        if name is not None and (not isinstance(name, str) or not _TARGET_NAME.fullmatch(name)):
            raise ConfigurationError(
                f"Email(name=...) must be 1-64 letters, digits or ._:- , got {name!r}"
            )
        self.name = name
        self.context = _check_context(context)
        self.subject, self.text, self.html = subject, text, html
        for part in _PARTS:
            source = getattr(self, part)
            if source is not None:
                _syntax_check(source, f"Email({part}=...)")

    def __repr__(self) -> str:
        label = f"name={self.name!r}, " if self.name else ""
        return f"Email({label}to={list(self.to)!r}, events={sorted(self.events)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Email) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def key(self) -> str:
        """``email:`` + the name, else a digest of the recipients, events and
        template/subject (the same target in every process and deploy)."""
        if self.name:
            return f"email:{self.name}"
        identity = {
            "to": sorted(_addr_spec(a).lower() for a in self.to),
            "cc": sorted(_addr_spec(a).lower() for a in self.cc),
            "events": sorted(self.events),
            "template": self.template,
            "subject": self.subject,
        }
        blob = json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()
        return "email:" + hashlib.sha256(blob).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "to": list(self.to),
            "cc": list(self.cc),
            "subject": self.subject,
            "template": self.template,
            "text": self.text,
            "html": self.html,
            "events": sorted(self.events),
            "sender": self.sender,
            "name": self.name,
            "context": dict(self.context),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Email:
        # A per-job target comes without its kind (target_from_json took it off).
        if not isinstance(data, Mapping) or data.get("kind", cls.kind) != cls.kind:
            raise ConfigurationError(f"not a stored email target: {data!r:.200}")
        unknown = sorted(set(data) - _JSON_KEYS)
        if unknown:
            raise ConfigurationError(f"stored email target has unknown fields {unknown}")
        if "to" not in data:
            raise ConfigurationError("stored email target has no 'to'")
        fields = {k: v for k, v in data.items() if k != "kind" and v is not None}
        return cls(**fields)

    # -- rendering and delivery --------------------------------------------------

    def variables(self, notice: Notice, settings: NotifySettings) -> dict[str, Any]:
        """What the templates see for ``notice``."""
        error = dict(notice.error) if notice.error else None
        job = dict(notice.body(traceback=True)["data"])
        job["result"] = notice.result
        job["error"] = error
        values: dict[str, Any] = {**settings.context, **self.context}
        dashboard = values.get("dashboard_url")
        job_url = None
        if isinstance(dashboard, str) and dashboard:
            job_url = (
                f"{dashboard.rstrip('/')}/queues/{quote(notice.queue, safe='')}"
                f"/jobs/{quote(notice.job_id, safe='')}"
            )
        values.update(
            job=job,
            notice=notice,
            event=notice.event,
            result=notice.result,
            error=error,
            job_url=job_url,
        )
        return values

    def render(self, notice: Notice, settings: NotifySettings) -> EmailMessage:
        """The email for ``notice``; DeliveryError (not retried) when a template is
        missing or fails, or no From address is configured."""
        try:
            sender = _sender(self.sender, settings)
        except ConfigurationError as exc:
            raise DeliveryError(str(exc), retry=False) from None
        values = self.variables(notice, settings)
        rendered = {part: self._render(part, values, settings.templates) for part in _PARTS}
        subject, text = rendered["subject"], rendered["text"]
        if subject is None or text is None:  # pragma: no cover - required parts raise
            raise DeliveryError("email template without subject or text", retry=False)
        if not subject.strip():
            raise DeliveryError(f"{self._label('subject')} rendered an empty subject", retry=False)
        token = f"{notice.id}.{hashlib.sha256(self.key.encode()).hexdigest()[:12]}"
        return _build(
            sender=sender,
            to=self.to,
            cc=self.cc,
            subject=subject,
            text=text if text.endswith("\n") else text + "\n",
            html=rendered["html"],
            msg_id=message_id(token, sender),
            headers={"X-Corral-Job": notice.job_id, "X-Corral-Event": notice.event},
        )

    async def deliver(self, notice: Notice, settings: NotifySettings) -> None:
        await send_message(self.render(notice, settings), settings)

    async def send_digest(
        self, subject: str, text: str, settings: NotifySettings, *, message_id_token: str
    ) -> None:
        """Send a plain-text digest to this target's recipients (see :func:`send_digest`)."""
        await send_digest(
            self.to,
            subject,
            text,
            settings,
            message_id_token=message_id_token,
            sender=self.sender,
            cc=self.cc,
        )

    def _label(self, part: str) -> str:
        if getattr(self, part) is not None:
            return f"email template Email({part}=...)"
        return f"email template {self._filename(part)!r}"

    def _filename(self, part: str) -> str:
        suffix = {"subject": ".subject.txt", "text": ".txt", "html": ".html"}[part]
        return f"{self.template or 'default'}{suffix}"

    def _render(self, part: str, values: dict[str, Any], directory: str | None) -> str | None:
        jinja2 = _jinja()
        source = getattr(self, part)
        # A part given inline replaces the template's; inline text alone means no HTML.
        if source is None and part == "html" and self.text is not None:
            return None
        label = self._label(part)
        try:
            if source is not None:
                template = _inline(directory, source, part == "html")
            else:
                template = _environment(directory, part == "html").get_template(
                    self._filename(part)
                )
        except jinja2.TemplateNotFound:
            if part == "html":
                return None
            where = f"{directory} or the built-in templates" if directory else "built-ins"
            raise DeliveryError(
                f"{label} not found (looked in {where}; set NotifySettings(templates=...))",
                retry=False,
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise DeliveryError(
                f"{label} line {exc.lineno}: syntax error: {exc.message}", retry=False
            ) from None
        try:
            return str(template.render(values))
        except jinja2.UndefinedError as exc:
            line = _template_line(exc, template.filename)
            raise DeliveryError(
                f"{label}{line}: {exc.message} (an undefined name; templates see "
                f"{', '.join(sorted(values))})",
                retry=False,
            ) from None
        except Exception as exc:
            line = _template_line(exc, template.filename)
            raise DeliveryError(
                f"{label}{line}: {type(exc).__name__}: {exc}", retry=False
            ) from None


def _template_line(exc: BaseException, filename: str | None) -> str:
    """`` line N`` of the template frame an error was raised from (Jinja2 rewrites
    tracebacks so template frames carry template lines), else ""."""
    wanted = filename or "<template>"
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename == wanted
    ]
    return f" line {lines[-1]}" if lines else ""


def _check_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    if context is None:
        return {}
    if not isinstance(context, Mapping) or not all(isinstance(k, str) for k in context):
        raise ConfigurationError("Email(context=...) must be a dict with string keys")
    clash = sorted(RESERVED & set(context))
    if clash:
        raise ConfigurationError(
            f"Email(context=...) may not redefine {clash}: templates get those from the job"
        )
    try:
        json.dumps(context)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Email(context=...) must be JSON: {exc}") from None
    return dict(context)


def _syntax_check(source: object, what: str) -> None:
    if not isinstance(source, str):
        raise ConfigurationError(f"{what} must be a template string, got {source!r:.80}")
    jinja2 = _jinja()
    try:
        jinja2.Environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigurationError(
            f"{what}: template syntax error on line {exc.lineno}: {exc.message}"
        ) from None


@functools.lru_cache(maxsize=32)
def _environment(directory: str | None, html: bool) -> jinja2.Environment:
    j2 = _jinja()
    search = [directory, str(BUILTIN_TEMPLATES)] if directory else [str(BUILTIN_TEMPLATES)]
    environment: jinja2.Environment = j2.Environment(
        loader=j2.FileSystemLoader(search),
        # Values are escaped in the HTML part only: the text part and the subject
        # show a result's "<" as "<".
        autoescape=html,
        undefined=j2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment


@functools.lru_cache(maxsize=256)
def _inline(directory: str | None, source: str, html: bool) -> jinja2.Template:
    return _environment(directory, html).from_string(source)
