"""``mailhub demo``: run as a user runs it, then read its HTML page like a reader would.

The page is parsed into its steps and its device columns, and each claim is checked in the
column it belongs to: the phone (in IDLE) really received the untagged ``FETCH (FLAGS (\\Seen))``
when the laptop read a message, the POP3 desktop really got ``+OK`` and UIDL lines, and so on.
The run against a fixture server also proves the transcript is the server's own (its greeting,
read here with imaplib and poplib, appears verbatim), that the password given on the command line
appears nowhere, and that the demo touched only the mail it delivered itself.
"""

from __future__ import annotations

import imaplib
import poplib
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

from mailhub_proc import MailhubServer, clean_env

STEPS = [
    "A phone and a laptop connect over IMAP",
    "Three messages arrive",
    "Read on the laptop: read on the phone",
    "Read on the phone: read on the laptop",
    "Moved to a folder on the laptop: moved on the phone",
    "The desktop downloads over POP3 (policy: delete)",
    "The operator sets the account's POP3 policy to keep",
    "Two more messages; the desktop downloads again (policy: keep)",
    "The desktop checks again",
    "Everyone logs out",
]


class _Page(HTMLParser):
    """Collects the column headers, and per step its title and each column's lines."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.steps: list[dict[str, object]] = []
        self.tags: list[str] = []
        self.text = ""
        self.cells: list[str] = []
        self.external: list[str] = []
        self.story_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.external.append(value)
        if tag in ("link", "script", "img"):
            self.external.append(tag)
        if tag in ("th", "td", "h2"):
            self.text = ""
        if tag == "td":
            self.story_cell = any(name == "colspan" for name, _v in attrs)

    def handle_endtag(self, tag: str) -> None:
        self.tags.pop()
        if tag == "th":
            self.headers.append(self.text.strip())
        elif tag == "h2":
            title = re.sub(r"^\d+\. | \([\d.]+ s\)$", "", self.text.strip())
            self.steps.append({"title": title, "columns": {}})
        elif tag == "td" and self.steps and not self.story_cell:
            self.cells.append(self.text)
        elif tag == "tr" and self.cells:
            if len(self.cells) == len(self.headers):
                self.steps[-1]["columns"] = dict(zip(self.headers, self.cells, strict=True))
            self.cells = []

    def handle_data(self, data: str) -> None:
        self.text += data


def _column(step: dict[str, object], prefix: str) -> str:
    columns = step["columns"]
    assert isinstance(columns, dict)
    return next((v for k, v in columns.items() if k.startswith(prefix)), "")


def _run(
    tmp_path: Path, *args: str, timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mailhub", "demo", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
    )
    return result, time.monotonic() - started


def _page(path: Path) -> _Page:
    parser = _Page()
    parser.feed(path.read_text("utf-8"))
    return parser


def _check_story(page: _Page) -> None:
    assert [s["title"] for s in page.steps] == STEPS
    assert page.external == []  # self-contained: no scripts, styles or images fetched
    by_title = {str(s["title"]): s for s in page.steps}
    connect = by_title[STEPS[0]]
    for device, tag in (("Phone", "p"), ("Laptop", "l")):
        col = _column(connect, device)
        assert re.search(r"^S: \* OK .*$", col, re.M), col  # the greeting
        assert re.search(rf'^C: {tag}1 LOGIN "\S+@\S+" \*{{8}}$', col, re.M), col
        assert re.search(rf"^S: {tag}\d+ OK .*SELECT", col, re.M), col
    assert re.search(r"^S: \+ ", _column(connect, "Phone"), re.M)  # IDLE continuation

    arrive = by_title[STEPS[1]]
    assert re.search(r"^S: 250 .*", _column(arrive, "Mail arrives"), re.M)
    assert re.search(r"^C: LHLO ", _column(arrive, "Mail arrives"), re.M)
    assert re.search(r"^S: \* \d+ EXISTS$", _column(arrive, "Phone"), re.M)

    read_laptop = by_title[STEPS[2]]
    assert re.search(r"^C: l\d+ UID FETCH \d+ \(BODY\[\]\)$", _column(read_laptop, "Laptop"), re.M)
    assert re.search(
        r"^S: \* \d+ FETCH \(FLAGS \(\\Seen[^)]*\)\)$", _column(read_laptop, "Phone"), re.M
    ), _column(read_laptop, "Phone")
    assert _column(read_laptop, "Desktop") == ""

    read_phone = by_title[STEPS[3]]
    assert re.search(r"^S: \* \d+ FETCH \(FLAGS \(\\Seen\)\)$", _column(read_phone, "Laptop"), re.M)

    move = by_title[STEPS[4]]
    assert re.search(r"^C: l\d+ UID MOVE \d+ \"Bills\"$", _column(move, "Laptop"), re.M)
    assert re.search(r"^S: \* \d+ EXPUNGE$", _column(move, "Phone"), re.M)
    assert re.search(
        r'^S: \* STATUS "Bills" \(MESSAGES 1 UNSEEN 1\)$', _column(move, "Phone"), re.M
    )

    pop_delete = by_title[STEPS[5]]
    desktop = _column(pop_delete, "Desktop")
    assert re.search(r"^S: \+OK .*", desktop, re.M)
    assert "C: PASS ********" in desktop
    assert re.search(r"^S: \d+ [0-9a-f]{16}$", desktop, re.M)  # UIDL lines
    assert re.search(r"^S: \d+ \d+$", desktop, re.M)  # LIST lines
    assert re.search(r"^C: DELE \d+$", desktop, re.M) and "C: QUIT" in desktop
    assert len(re.findall(r"^S: \* \d+ EXPUNGE$", _column(pop_delete, "Phone"), re.M)) == 2

    policy = by_title[STEPS[6]]
    assert "--pop3-on-delete keep" in _column(policy, "Operator")

    keep = by_title[STEPS[7]]
    phone = _column(keep, "Phone")
    assert len(re.findall(r"^S: \* \d+ FETCH \(FLAGS \(\\Seen[^)]*\)\)$", phone, re.M)) == 2
    assert "EXPUNGE" not in phone.split("+OK")[-1]
    assert re.search(
        r"^S: \* \d+ FETCH \(UID \d+ FLAGS \(\\Seen\)\)$", _column(keep, "Laptop"), re.M
    )

    again = _column(by_title[STEPS[8]], "Desktop")
    assert re.search(r"^S: \+OK .*\d+ messages left", again, re.M)
    uidl = re.compile(r"^S: \d+ ([0-9a-f]{16})$", re.M)
    kept = set(uidl.findall(_column(keep, "Desktop")))
    assert len(kept) >= 2 and kept <= set(uidl.findall(again))  # same UIDLs next session

    logout = by_title[STEPS[9]]
    assert re.search(r"^S: \* BYE", _column(logout, "Phone"), re.M)
    assert re.search(r"^S: l\d+ OK .*LOGOUT", _column(logout, "Laptop"), re.M)


def test_private_demo_under_30_seconds(tmp_path: Path) -> None:
    result, took = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert took < 30, f"mailhub demo took {took:.1f} s"
    assert "Traceback" not in result.stderr
    html = tmp_path / "mailhub-demo.html"  # the default, in the current directory
    assert html.exists()
    page = _page(html)
    _check_story(page)
    # The narrative on the terminal tells the same story, with the same wire lines.
    for n, title in enumerate(STEPS, 1):
        assert f"== {n}. {title}" in result.stdout
    assert re.search(r"phone +<< \* \d+ FETCH \(FLAGS \(\\Seen", result.stdout)
    assert "PASS ********" in result.stdout


def test_demo_against_a_running_server(mailhub_server: MailhubServer, tmp_path: Path) -> None:
    server = mailhub_server
    # Mail of the user's own that the demo must leave alone.
    server.cli("deliver", server.user, input="Subject: mine\n\nkeep me\n", check=True)
    imap = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    imap_greeting = imap.welcome.decode()
    imap.logout()
    pop = poplib.POP3("127.0.0.1", server.ports["pop3"])
    pop_greeting = pop.getwelcome().decode()
    pop.quit()

    html = tmp_path / "real.html"
    result, _took = _run(
        tmp_path,
        "--html",
        str(html),
        "--server",
        "127.0.0.1",
        "--imap-port",
        str(server.ports["imap"]),
        "--pop3-port",
        str(server.ports["pop3"]),
        "--lmtp-port",
        str(server.ports["lmtp"]),
        "--user",
        server.user,
        "--password",
        server.password,
        "--data-dir",
        str(server.data_dir),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    text = html.read_text("utf-8")
    for output in (result.stdout, result.stderr, text):
        assert server.password not in output
    # The server's own greetings, verbatim (the transcript is what went over the wire).
    page = _page(html)
    assert f"S: {imap_greeting}\n" in _column(page.steps[0], "Phone")
    assert f"S: {pop_greeting}\n" in _column(page.steps[5], "Desktop")
    _check_story(page)
    # The account's POP3 policy is back to what it was, and the user's own mail is untouched.
    listed = server.cli("user", "list", check=True).stdout
    assert "pop3=delete," in listed
    pop = poplib.POP3("127.0.0.1", server.ports["pop3"])
    pop.user(server.user)
    pop.pass_(server.password)
    subjects = []
    for entry in pop.list()[1]:
        num = entry.split()[0].decode()
        head = pop.top(int(num), 0)[1]
        subjects += [h.decode() for h in head if h.startswith(b"Subject:")]
    pop.quit()
    assert "Subject: mine" in subjects
    # The server logged the demo's logins like any client's.
    server.wait_for_log(rf"logged in as {re.escape(server.user)}")


def test_demo_with_a_wrong_password(mailhub_server: MailhubServer, tmp_path: Path) -> None:
    result, _took = _run(
        tmp_path,
        "--server",
        "127.0.0.1",
        "--imap-port",
        str(mailhub_server.ports["imap"]),
        "--pop3-port",
        str(mailhub_server.ports["pop3"]),
        "--user",
        mailhub_server.user,
        "--password",
        "wrong-Password-1",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("mailhub demo: failed: phone: ")
    assert "Traceback" not in result.stderr
    assert "wrong-Password-1" not in result.stdout + result.stderr
    assert not (tmp_path / "mailhub-demo.html").exists()
