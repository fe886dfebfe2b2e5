"""A store handle in its own process, driven by JSON lines on stdin (one reply line each).

Used by the multi-process property test and the crash test: the store must stay consistent
when several processes (server, ``mailhub deliver``) write the same Maildir.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from mailhub.store.flags import FlagOp
from mailhub.store.maildir import MaildirMailstore
from mailhub.store.model import NewMessage


async def handle(store: MaildirMailstore, cmd: dict[str, Any]) -> Any:
    account = await store.open_account(cmd["account"])
    mailbox = await account.open_mailbox(cmd.get("folder", "INBOX"))
    op = cmd["op"]
    if op == "append":
        infos = await mailbox.deliver(
            [NewMessage(m.encode(), frozenset(cmd.get("flags", []))) for m in cmd["messages"]]
        )
        return [i.uid for i in infos]
    if op == "store":
        changed, _ = await mailbox.store_flags(
            cmd["uids"], FlagOp(cmd["how"]), frozenset(cmd["flags"])
        )
        return [[i.uid, i.modseq] for i in changed]
    if op == "expunge":
        return await mailbox.expunge(cmd["uids"])
    if op in ("copy", "move"):
        mapping = await getattr(mailbox, op)(cmd["uids"], cmd["dest"])
        return {str(k): v for k, v in mapping.items()}
    if op == "snapshot":
        await mailbox.sync()
        snap = await mailbox.snapshot()
        return {
            "uidvalidity": snap.uidvalidity,
            "uid_next": snap.uid_next,
            "messages": [[m.uid, sorted(m.flags)] for m in snap.messages],
        }
    raise ValueError(f"unknown op {op}")


async def main(root: Path) -> None:
    store = MaildirMailstore(root)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while line := await reader.readline():
        cmd = json.loads(line)
        try:
            result = {"ok": await handle(store, cmd)}
        except Exception as exc:  # reported to the test, which decides
            result = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(result), flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
