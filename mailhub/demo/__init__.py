"""``mailhub demo``: the seed document's IMAP-versus-POP3 story, played on a real server.

``wire`` has the recording protocol clients, ``private`` the throwaway server, ``story`` the
steps and what each must show, ``render`` the terminal narrative and the HTML page. The command
itself is :mod:`mailhub.ops.demo`.
"""
