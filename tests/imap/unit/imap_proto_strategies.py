"""Hypothesis strategies producing canonical typed IMAP commands (what the parser emits)."""

from __future__ import annotations

import datetime

from hypothesis import strategies as st

from mailhub.imap.proto import commands as c
from mailhub.imap.proto import search as sk
from mailhub.imap.proto.fetch import SIMPLE_ATTS, FetchAtt, Section
from mailhub.imap.proto.names import SPECIAL_USE, normalize_inbox
from mailhub.imap.proto.sequence import MAX_NUMBER, SequenceSet
from mailhub.imap.proto.tokens import ATOM_CHARS, TAG_CHARS

ASCII_ATOM = "".join(sorted(chr(b) for b in ATOM_CHARS))
KEYWORD_CHARS = ASCII_ATOM.replace("\\", "")
SYSTEM = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")

tags = st.text("".join(sorted(chr(b) for b in TAG_CHARS)), min_size=1, max_size=8)
nz32 = st.integers(1, MAX_NUMBER)
n64 = st.integers(0, 2**63 - 1)
nz64 = st.integers(1, 2**63 - 1)

_name_char = st.characters(
    blacklist_categories=("Cs", "Cc"),
    blacklist_characters="/%*\\\u2028\u2029",
)
_component = st.text(_name_char, min_size=1, max_size=12).filter(lambda s: s.strip(".") != "")
mailboxes = st.lists(_component, min_size=1, max_size=3).map(
    lambda parts: normalize_inbox("/".join(parts))
)
patterns = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=15).map(
    normalize_inbox
)

keywords = st.text(KEYWORD_CHARS, min_size=1, max_size=10)
flags = st.sampled_from(SYSTEM) | keywords
flag_lists = st.lists(flags, max_size=4).map(tuple)

_r = st.one_of(nz32, st.none())
seqsets = st.builds(
    SequenceSet,
    st.lists(st.tuples(_r, _r), min_size=1, max_size=4).map(tuple),
    st.booleans(),
)
texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
header_names = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12
)
dates = st.dates(datetime.date(1000, 1, 1), datetime.date(9999, 12, 31))

_leaf_keys = st.one_of(
    st.just(sk.AllKey()),
    st.builds(sk.FlagKey, st.sampled_from((*SYSTEM, "\\Recent")) | keywords, st.booleans()),
    st.builds(sk.HeaderKey, header_names, texts),
    st.builds(sk.TextKey, texts, st.booleans()),
    st.builds(sk.DateKey, st.sampled_from(["before", "on", "since"]), dates, st.booleans()),
    st.builds(sk.SizeKey, st.sampled_from(["larger", "smaller"]), n64),
    st.builds(sk.SeqKey, seqsets, st.booleans()),
    st.builds(sk.ModSeqKey, n64)
    | st.builds(
        sk.ModSeqKey,
        n64,
        st.text(KEYWORD_CHARS + "/", min_size=1, max_size=10),
        st.sampled_from(["priv", "shared", "all"]),
    ),
    st.builds(sk.WithinKey, st.booleans(), nz32),
)
search_keys = st.recursive(
    _leaf_keys,
    lambda inner: st.one_of(
        st.builds(sk.Not, inner),
        st.builds(sk.Or, inner, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda ks: sk.And(tuple(ks))),
    ),
    max_leaves=8,
)
programs = st.lists(search_keys, min_size=1, max_size=4).map(lambda ks: sk.And(tuple(ks)))
return_opts = st.none() | st.lists(
    st.sampled_from(["MIN", "MAX", "ALL", "COUNT", "SAVE"]), unique=True
).map(tuple)

_parts = st.lists(st.integers(1, 50), max_size=3).map(tuple)
_hdrs = st.lists(header_names, min_size=1, max_size=3).map(tuple)
_partial = st.none() | st.tuples(st.integers(0, MAX_NUMBER), nz32)


@st.composite
def body_sections(draw: st.DrawFn) -> Section:
    part = draw(_parts)
    text = draw(
        st.sampled_from([None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"])
    )
    if text == "MIME" and not part:
        text = None
    headers = draw(_hdrs) if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT") else ()
    return Section(part, text, headers)


fetch_atts = st.one_of(
    st.sampled_from(sorted(SIMPLE_ATTS)).map(FetchAtt),
    st.builds(FetchAtt, st.just("BODY"), body_sections(), _partial, st.booleans()),
    st.builds(FetchAtt, st.just("BINARY"), _parts.map(Section), _partial, st.booleans()),
    st.builds(FetchAtt, st.just("BINARY.SIZE"), _parts.map(Section)),
)


@st.composite
def fetches(draw: st.DrawFn) -> c.Fetch:
    uid = draw(st.booleans())
    changed = draw(st.none() | n64)
    vanished = uid and changed is not None and draw(st.booleans())
    return c.Fetch(
        draw(tags),
        uid,
        draw(seqsets),
        tuple(draw(st.lists(fetch_atts, min_size=1, max_size=5))),
        changed,
        vanished,
    )


_status_items = st.lists(
    st.sampled_from(
        [
            "MESSAGES",
            "UIDNEXT",
            "UIDVALIDITY",
            "UNSEEN",
            "DELETED",
            "SIZE",
            "RECENT",
            "HIGHESTMODSEQ",
            "APPENDLIMIT",
        ]
    ),
    min_size=1,
    max_size=4,
).map(tuple)


@st.composite
def lists(draw: st.DrawFn) -> c.List:
    tag = draw(tags)
    if not draw(st.booleans()):
        return c.List(tag, draw(patterns), (draw(patterns),))
    sel = draw(st.lists(st.sampled_from(["SUBSCRIBED", "REMOTE", "SPECIAL-USE"]), unique=True))
    if sel and draw(st.booleans()):
        sel.append("RECURSIVEMATCH")
    status = draw(st.booleans())
    return c.List(
        tag,
        draw(patterns),
        tuple(draw(st.lists(patterns, min_size=1, max_size=3))),
        tuple(sel),
        tuple(
            draw(st.lists(st.sampled_from(["SUBSCRIBED", "CHILDREN", "SPECIAL-USE"]), unique=True))
        ),
        draw(_status_items) if status else (),
        status,
        True,
    )


_tz = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda m: datetime.timezone(datetime.timedelta(minutes=m))
)
datetimes = st.datetimes(datetime.datetime(1000, 1, 1), datetime.datetime(9999, 12, 30)).map(
    lambda d: d.replace(microsecond=0)
)
append_messages = (
    st.builds(
        c.AppendMessage,
        st.binary(max_size=40),
        flag_lists,
        st.none() | st.builds(lambda d, tz: d.replace(tzinfo=tz), datetimes, _tz),
        st.booleans(),
        st.booleans(),
    )
    .filter(lambda m: m.binary or m.utf8 or b"\x00" not in m.data)
    .map(lambda m: c.AppendMessage(m.data, m.flags, m.date, m.binary or m.utf8, m.utf8))
)
qresync = st.builds(
    c.QResyncParams,
    nz32,
    nz64,
    st.none() | seqsets.map(lambda s: SequenceSet(s.ranges)),
    st.none()
    | st.tuples(
        seqsets.map(lambda s: SequenceSet(s.ranges)), seqsets.map(lambda s: SequenceSet(s.ranges))
    ),
)
astring_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
caps = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=+-", min_size=1, max_size=12)

commands = st.one_of(
    st.builds(c.Capability, tags),
    st.builds(c.Noop, tags),
    st.builds(c.Logout, tags),
    st.builds(c.StartTls, tags),
    st.builds(c.Namespace, tags),
    st.builds(c.Idle, tags),
    st.builds(c.Check, tags),
    st.builds(c.Close, tags),
    st.builds(c.Unselect, tags),
    st.builds(c.Expunge, tags),
    st.builds(lambda t, s: c.Expunge(t, True, SequenceSet(s.ranges)), tags, seqsets),
    st.builds(
        c.Id,
        tags,
        st.none()
        | st.lists(st.tuples(astring_text, st.none() | astring_text), max_size=4).map(tuple),
    ),
    st.builds(c.Authenticate, tags, caps, st.none() | st.binary(max_size=30)),
    st.builds(c.Login, tags, astring_text, astring_text),
    st.builds(c.Enable, tags, st.lists(caps, min_size=1, max_size=3).map(tuple)),
    st.builds(c.Select, tags, mailboxes, st.booleans(), st.booleans(), st.none() | qresync),
    st.builds(
        c.Create,
        tags,
        mailboxes,
        st.lists(st.sampled_from(sorted(SPECIAL_USE.values())), max_size=2).map(tuple),
    ),
    st.builds(c.Delete, tags, mailboxes),
    st.builds(c.Rename, tags, mailboxes, mailboxes),
    st.builds(c.Subscribe, tags, mailboxes),
    st.builds(c.Unsubscribe, tags, mailboxes),
    st.builds(c.GetQuotaRoot, tags, mailboxes),
    lists(),
    st.builds(c.Lsub, tags, patterns, patterns),
    st.builds(c.XList, tags, patterns, patterns),
    st.builds(c.Status, tags, mailboxes, _status_items),
    st.builds(
        c.Append, tags, mailboxes, st.lists(append_messages, min_size=1, max_size=3).map(tuple)
    ),
    st.builds(c.GetQuota, tags, astring_text),
    st.builds(
        c.SetQuota,
        tags,
        astring_text,
        st.lists(st.tuples(st.sampled_from(["STORAGE", "MESSAGE"]), n64), max_size=2).map(tuple),
    ),
    st.builds(c.Compress, tags, st.just("DEFLATE")),
    st.builds(
        lambda t, u, cs, crit, r: c.Search(t, u, crit, cs, r),
        tags,
        st.booleans(),
        st.sampled_from([None, "UTF-8"]),
        programs,
        return_opts,
    ),
    fetches(),
    st.builds(
        c.Store,
        tags,
        st.booleans(),
        seqsets,
        st.sampled_from(["replace", "add", "remove"]),
        st.booleans(),
        flag_lists,
        st.none() | n64,
    ),
    st.builds(c.Copy, tags, st.booleans(), seqsets, mailboxes),
    st.builds(c.Move, tags, st.booleans(), seqsets, mailboxes),
    st.builds(
        c.Sort,
        tags,
        st.booleans(),
        st.lists(
            st.builds(
                c.SortKey,
                st.sampled_from(
                    [
                        "ARRIVAL",
                        "CC",
                        "DATE",
                        "FROM",
                        "SIZE",
                        "SUBJECT",
                        "TO",
                        "DISPLAYFROM",
                        "DISPLAYTO",
                    ]
                ),
                st.booleans(),
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
        st.just("UTF-8"),
        programs,
        return_opts,
    ),
    st.builds(
        c.Thread,
        tags,
        st.booleans(),
        st.sampled_from(["REFERENCES", "ORDEREDSUBJECT"]),
        st.just("UTF-8"),
        programs,
    ),
)
