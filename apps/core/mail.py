"""An e-mail backend for the laptop (`make run`): each message printed to the terminal as a
person reads it, between rulers that are easy to spot among the request lines (Django's console
backend prints the raw MIME message, quoted-printable bodies and all)."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend

RULE = "=" * 72


class ConsoleEmailBackend(DjangoConsoleBackend):
    def write_message(self, message: EmailMessage) -> None:
        lines = [
            "",
            f"{RULE}",
            f"E-MAIL  to {', '.join(message.to)}",
            f"Subject: {message.subject}",
            f"From:    {message.from_email}",
            RULE,
            str(message.body).rstrip(),
        ]
        names = _attachment_names(message.attachments)
        if names:
            lines.append(f"[attached: {', '.join(names)}]")
        lines += [RULE, ""]
        assert self.stream is not None
        self.stream.write("\n".join(lines) + "\n")


def _attachment_names(attachments: Sequence[object]) -> list[str]:
    names = []
    for attachment in attachments:
        filename = getattr(attachment, "filename", None)
        if filename is None and isinstance(attachment, tuple):
            filename = attachment[0]
        names.append(str(filename or "(unnamed)"))
    return names
