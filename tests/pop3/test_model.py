"""Property test: random POP3 sessions against a live server agree with a simple model.

Each example logs in to a fresh account holding a few messages, runs a random mix of STAT,
LIST, UIDL, RETR, TOP, DELE, RSET and NOOP (valid and invalid numbers), checks every reply
against the model, ends with QUIT or a dropped connection, and then checks the store: exactly
the DELE'd messages are gone after QUIT, nothing changed after a drop, and exactly the RETR'd
survivors are \\Seen.
"""

from __future__ import annotations

import itertools
import poplib
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pop3_helpers import Pop3Env, make_message

from mailhub.store.flags import SEEN

_counter = itertools.count()

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP"]),
        st.integers(0, 6),
    ),
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(0, 5), _OPS, st.booleans())
def test_random_sessions_match_model(
    pop3env: Pop3Env, count: int, ops: list[tuple[str, int]], clean_quit: bool
) -> None:
    user = pop3env.add_user(f"u{next(_counter)}@example.org")
    uids = [pop3env.deliver(user, make_message(f"s{i}", body=f"body {i}\n")) for i in range(count)]
    sizes = {m.uid: m.size for m in pop3env.call(pop3env.mailbox(user).snapshot()).messages}
    client = pop3env.login(user)
    deleted: set[int] = set()
    retrieved: set[int] = set()

    def valid(n: int) -> bool:
        return 1 <= n <= count and n not in deleted

    for verb, n in ops:
        live = [i for i in range(1, count + 1) if i not in deleted]
        if verb == "STAT":
            assert client.stat() == (len(live), sum(sizes[uids[i - 1]] for i in live))
        elif verb == "LIST":
            _, lines, _ = client.list()
            assert lines == [b"%d %d" % (i, sizes[uids[i - 1]]) for i in live]
        elif verb == "UIDL":
            _, lines, _ = client.uidl()
            assert [int(x.split()[0]) for x in lines] == live
        elif verb in ("RETR", "TOP", "DELE"):
            call = {
                "RETR": lambda k: client.retr(k),
                "TOP": lambda k: client.top(k, 0),
                "DELE": lambda k: client.dele(k),
            }[verb]
            if valid(n):
                call(n)
                if verb == "RETR":
                    retrieved.add(uids[n - 1])
                if verb == "DELE":
                    deleted.add(n)
            else:
                try:
                    call(n)
                except poplib.error_proto as exc:
                    assert str(exc).startswith("b'-ERR")
                else:
                    raise AssertionError(f"{verb} {n} should have failed")
        elif verb == "RSET":
            client.rset()
            deleted.clear()
        else:
            client.noop()
    if clean_quit:
        client.quit()
    else:
        client.close()
        time.sleep(0.1)
    after = {m.uid: m for m in pop3env.call(pop3env.mailbox(user).snapshot()).messages}
    gone = {uids[i - 1] for i in deleted} if clean_quit else set()
    assert set(after) == set(uids) - gone
    for uid, info in after.items():
        assert (SEEN in info.flags) == (clean_quit and uid in retrieved)
