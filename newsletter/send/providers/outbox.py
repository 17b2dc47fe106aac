"""``outbox``: every message as an RFC 5322 file in a local Maildir.

The embedded default: nothing leaves the machine, and the result opens in any mail
client (``mutt -f outbox``). Maildir writes each message into ``tmp/`` and renames it
into ``new/``, so a crash never leaves half a message where a reader looks.
"""

from __future__ import annotations

import mailbox
import os
import shutil
import tempfile
from pathlib import Path

from newsletter.config import Config
from newsletter.errors import ProviderUnavailable, SendError
from newsletter.send.providers import (
    NO_LOG,
    BaseProvider,
    Batch,
    Delivery,
    DeliveryLog,
    local_message,
)


class OutboxProvider(BaseProvider):
    name = "outbox"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.batch_size = config.sending.batch_size
        self.path = config.outbox_dir
        self._maildir: mailbox.Maildir | None = None

    def _open(self) -> mailbox.Maildir:
        if self._maildir is None:
            try:
                _create_whole(Path(self.path))
                self._maildir = mailbox.Maildir(self.path, factory=None, create=False)
            except OSError as error:
                raise SendError(
                    f"{self.path}: cannot create the outbox ({error.strerror}); "
                    "check outbox.path in newsletter.yaml"
                ) from None
        return self._maildir

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]:
        maildir = self._open()
        deliveries: list[Delivery] = []
        for index, recipient in enumerate(batch.recipients):
            if not log.starting(index):  # waits for the pace first
                deliveries.append(Delivery("skipped", error="not sent: no longer subscribed"))
                continue
            message_id, message = local_message(batch.content, recipient)
            try:
                maildir.add(message)
            except OSError as error:
                # Maildir.add removes its half-written tmp/ file: this message is not in
                # the outbox, nor is any after it, so they all stay pending.
                reason = (
                    f"{self.path}: cannot write to the outbox ({error.strerror}); "
                    "free some space or fix the folder's permissions"
                )
                unsent = Delivery("deferred", error=reason)
                log.finished(index, unsent)
                deliveries.append(unsent)
                deliveries.extend(
                    [Delivery("deferred", error=f"not attempted: {reason}")]
                    * (len(batch.recipients) - index - 1)
                )
                raise ProviderUnavailable(
                    reason, maybe_delivered=False, deliveries=deliveries
                ) from None
            delivery = Delivery("sent", message_id=message_id)
            log.finished(index, delivery)
            deliveries.append(delivery)
        return deliveries


def _create_whole(path: Path) -> None:
    """Make the Maildir beside ``path`` and rename it into place, so that a mail client
    (or ``run-due`` in another process) never finds the folder without ``cur/``."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for folder in ("tmp", "new", "cur"):
            (building / folder).mkdir(mode=0o700)
        os.rename(building, path)
    except OSError:
        if not path.is_dir():  # not another process that got there first
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
