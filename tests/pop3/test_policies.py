"""Per-account POP3 policy, the maildrop snapshot and lock, seen through the store API.

The store API is what the IMAP frontend reads, so a change visible here (and on the change
bus) is what an IMAP session of the same account sees.
"""

from __future__ import annotations

import poplib
import time

import pytest
from pop3_helpers import PASSWORD, Pop3Env, make_message

from mailhub.auth.model import Pop3DeleteAction, Pop3Scope
from mailhub.store.changes import FlagsChanged, MessagesAdded, MessagesExpunged
from mailhub.store.flags import SEEN, FlagOp
from mailhub.store.model import Snapshot


def snap(env: Pop3Env, user: str, folder: str = "INBOX") -> Snapshot:
    return env.call(env.mailbox(user, folder).snapshot())


def subjects_retrieved(client: poplib.POP3) -> list[bytes]:
    out = []
    for n in range(1, client.stat()[0] + 1):
        _, lines, _ = client.top(n, 0)
        out += [line for line in lines if line.startswith(b"Subject:")]
    return out


def setup_three(env: Pop3Env, **policy: object) -> tuple[str, list[int]]:
    user = env.add_user("bob@example.org", **policy)
    uids = [env.deliver(user, make_message(f"m{i}")) for i in range(3)]
    return user, uids


def test_delete_policy_expunges_at_quit_only(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env)
    bus = pop3env.ctx.store.bus if pop3env.ctx else None
    assert bus is not None
    sub = bus.subscribe(user, "INBOX")
    client = pop3env.login()
    client.retr(1)
    client.dele(1)
    client.dele(3)
    assert [m.uid for m in snap(pop3env, user).messages] == uids  # nothing before QUIT
    client.quit()
    after = snap(pop3env, user)
    assert [m.uid for m in after.messages] == [uids[1]]
    changes, _ = sub.drain()
    expunged = {u for c in changes if isinstance(c, MessagesExpunged) for u in c.uids}
    assert expunged == {uids[0], uids[2]}
    sub.close()


def test_dropped_connection_changes_nothing(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env)
    client = pop3env.login()
    client.retr(1)
    client.dele(1)
    client.dele(2)
    client.close()  # no QUIT: the connection just drops
    time.sleep(0.3)
    after = snap(pop3env, user)
    assert [m.uid for m in after.messages] == uids
    assert all(SEEN not in m.flags for m in after.messages)
    # And the lock was released: a new session works and sees all three.
    client = pop3env.login()
    assert client.stat()[0] == 3
    client.quit()


def test_keep_policy_marks_seen(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env, on_delete=Pop3DeleteAction.KEEP)
    client = pop3env.login()
    client.dele(2)
    # Regression: QUIT said "0 messages left" although keep leaves everything in INBOX.
    assert client.quit() == b"+OK Logging out, 3 messages left"
    after = snap(pop3env, user)
    assert [m.uid for m in after.messages] == uids
    flags = {m.uid: m.flags for m in after.messages}
    assert SEEN in flags[uids[1]]
    assert SEEN not in flags[uids[0]] and SEEN not in flags[uids[2]]


@pytest.mark.parametrize(
    ("action", "folder"), [(Pop3DeleteAction.ARCHIVE, "Archive"), (Pop3DeleteAction.TRASH, "Trash")]
)
def test_archive_and_trash_policies_move(
    pop3env: Pop3Env, action: Pop3DeleteAction, folder: str
) -> None:
    user, uids = setup_three(pop3env, on_delete=action)
    before_dest = len(snap(pop3env, user, folder).messages)
    client = pop3env.login()
    client.retr(1)
    client.dele(1)
    client.dele(2)
    client.quit()
    assert [m.uid for m in snap(pop3env, user).messages] == [uids[2]]
    moved = snap(pop3env, user, folder).messages
    assert len(moved) == before_dest + 2
    # The retrieved one was marked \Seen before it moved, so it arrives \Seen.
    assert sum(1 for m in moved if SEEN in m.flags) == 1


def test_archive_folder_recreated_if_missing(pop3env: Pop3Env) -> None:
    user, _uids = setup_three(pop3env, on_delete=Pop3DeleteAction.ARCHIVE)

    async def drop_archive() -> None:
        assert pop3env.ctx is not None
        account = await pop3env.ctx.store.open_account(user)
        await account.delete_mailbox("Archive")

    pop3env.call(drop_archive())
    client = pop3env.login()
    client.dele(3)
    client.quit()
    assert len(snap(pop3env, user, "Archive").messages) == 1


def test_retr_marks_seen_only_after_clean_quit(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env, on_delete=Pop3DeleteAction.KEEP)
    client = pop3env.login()
    client.retr(2)
    assert all(SEEN not in m.flags for m in snap(pop3env, user).messages)
    client.quit()
    flags = {m.uid: m.flags for m in snap(pop3env, user).messages}
    assert SEEN in flags[uids[1]] and SEEN not in flags[uids[0]]


def test_retr_without_mark_seen(pop3env: Pop3Env) -> None:
    user, _uids = setup_three(pop3env, mark_seen_on_retr=False)
    client = pop3env.login()
    client.retr(1)
    client.quit()
    assert all(SEEN not in m.flags for m in snap(pop3env, user).messages)


def test_scope_since_enabled(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env)
    pop3env.set_policy(user, scope=Pop3Scope.SINCE_ENABLED.value, enabled_from_uid=uids[2])
    new_uid = pop3env.deliver(user, make_message("after"))
    client = pop3env.login()
    assert client.stat()[0] == 2
    _, uidls, _ = client.uidl()
    assert [int(x.split()[1][:8], 16) for x in uidls] == [uids[2], new_uid]
    client.quit()


def test_scope_not_retrieved_and_recent_login(pop3env: Pop3Env) -> None:
    user = pop3env.add_user(
        "bob@example.org", on_delete=Pop3DeleteAction.KEEP, scope=Pop3Scope.NOT_RETRIEVED
    )
    old = time.time() - 40 * 86400
    pop3env.deliver(user, make_message("ancient"), internal_date=old)
    for i in range(3):
        pop3env.deliver(user, make_message(f"m{i}"))
    client = pop3env.login()
    assert client.capa()["EXPIRE"] == ["0"]
    assert client.stat()[0] == 4
    client.retr(2)
    client.retr(3)
    client.close()  # dropped: nothing counts as downloaded
    time.sleep(0.2)
    client = pop3env.login()
    assert client.stat()[0] == 4
    client.retr(2)
    client.retr(3)
    client.quit()
    client = pop3env.login()
    assert subjects_retrieved(client) == [b"Subject: ancient", b"Subject: m2"]
    client.quit()
    # A second device logs in as recent:<user>: the last 30 days again, downloaded or not.
    client = pop3env.login(f"recent:{user}")
    assert subjects_retrieved(client) == [b"Subject: m0", b"Subject: m1", b"Subject: m2"]
    client.quit()
    # Before login, CAPA warns that some user expires mail at once.
    client = pop3env.connect()
    assert client.capa()["EXPIRE"] == ["0", "USER"]
    client.quit()


def test_snapshot_is_fixed_at_login(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env)
    client = pop3env.login()
    pop3env.deliver(user, make_message("late"))
    pop3env.with_mailbox(
        user, lambda b: b.store_flags([uids[0]], FlagOp.ADD, frozenset({"\\Flagged"}))
    )
    assert client.stat()[0] == 3
    _, listing, _ = client.list()
    assert len(listing) == 3
    _, uidls, _ = client.uidl()
    client.quit()
    client = pop3env.login()
    assert client.stat()[0] == 4
    _, listing, _ = client.list()  # the cached LIST/UIDL of the old maildrop is not reused
    _, uidls_after, _ = client.uidl()
    assert len(listing) == 4 and uidls_after[:3] == uidls and len(uidls_after) == 4
    client.quit()


def test_retr_of_message_expunged_meanwhile(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env)
    client = pop3env.login()
    pop3env.with_mailbox(user, lambda b: b.expunge([uids[1]]))
    with pytest.raises(poplib.error_proto, match="-ERR"):
        client.retr(2)
    with pytest.raises(poplib.error_proto, match="-ERR"):
        client.top(2, 0)
    assert client.noop().startswith(b"+OK")
    client.retr(3)
    client.dele(2)  # deleting what is already gone is harmless at QUIT
    client.dele(3)
    assert client.quit().startswith(b"+OK")
    assert [m.uid for m in snap(pop3env, user).messages] == [uids[0]]


def test_maildrop_lock(pop3env: Pop3Env) -> None:
    user, _uids = setup_three(pop3env)
    first = pop3env.login()
    second = pop3env.connect()
    second.user(user)
    with pytest.raises(poplib.error_proto, match=r"-ERR \[IN-USE\]"):
        second.pass_(PASSWORD)
    # Delivery (and IMAP, which uses the same store API) is not locked out.
    pop3env.deliver(user, make_message("while locked"))
    first.quit()
    second.user(user)
    assert second.pass_(PASSWORD).startswith(b"+OK")
    assert second.stat()[0] == 4
    second.quit()


def test_non_inbox_mail_never_listed(pop3env: Pop3Env) -> None:
    user = pop3env.add_user("bob@example.org")
    pop3env.deliver(user, make_message("inbox"))
    pop3env.deliver(user, make_message("archived"), folder="Archive")
    pop3env.deliver(user, make_message("sent"), folder="Sent")
    client = pop3env.login()
    assert subjects_retrieved(client) == [b"Subject: inbox"]
    client.quit()


def test_imap_flag_change_does_not_renumber(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env)
    client = pop3env.login()
    _, before, _ = client.uidl()
    pop3env.with_mailbox(user, lambda b: b.store_flags(uids, FlagOp.ADD, frozenset({SEEN})))
    _, after, _ = client.uidl()
    assert before == after
    client.quit()
    client = pop3env.login()
    _, again, _ = client.uidl()
    assert again == before
    client.quit()


def test_bus_sees_pop3_changes_under_keep(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env, on_delete=Pop3DeleteAction.KEEP)
    assert pop3env.ctx is not None
    sub = pop3env.ctx.store.bus.subscribe(user, "INBOX")
    client = pop3env.login()
    client.dele(1)
    client.quit()
    changes, _ = sub.drain()
    flagged = [m for c in changes if isinstance(c, FlagsChanged) for m in c.messages]
    assert [m.uid for m in flagged] == [uids[0]] and SEEN in flagged[0].flags
    assert not any(isinstance(c, MessagesExpunged | MessagesAdded) for c in changes)
    sub.close()


def test_server_shutdown_says_goodbye_and_changes_nothing(pop3env: Pop3Env) -> None:
    user, uids = setup_three(pop3env)
    client = pop3env.login()
    client.retr(1)
    client.dele(1)
    pop3env.stop()
    line = client.file.readline()
    assert line.startswith(b"-ERR [SYS/TEMP] Server shutting down")
    pop3env.start()
    after = snap(pop3env, user)
    assert [m.uid for m in after.messages] == uids
    assert all(SEEN not in m.flags for m in after.messages)
