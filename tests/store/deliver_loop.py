"""Deliver messages into one INBOX forever, printing ``<uid> <subject>`` after each success.

The crash test kills this process with SIGKILL at random moments: a line printed here is a
delivery the store acknowledged, so it must survive.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mailhub.store.maildir import MaildirMailstore
from mailhub.store.model import NewMessage


async def main(root: Path, address: str, prefix: str) -> None:
    store = MaildirMailstore(root)
    account = await store.open_account(address)
    inbox = await account.open_mailbox("INBOX")
    print("ready", flush=True)
    n = 0
    while True:
        subject = f"{prefix}-{n}"
        data = f"Subject: {subject}\n\n{'x' * 2000}\n".encode()
        (info,) = await inbox.deliver([NewMessage(data)])
        print(info.uid, subject, flush=True)
        n += 1


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
