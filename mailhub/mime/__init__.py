"""MIME structure, sections and text: protocol-neutral message parsing for IMAP and SEARCH.

How the IMAP layer uses it (all functions are pure; message bytes are the store's CRLF form)::

    from mailhub.mime.structure import parse
    from mailhub.mime import sections as S, text as T
    from mailhub.imap.render import envelope, body, bodystructure
    from mailhub.imap.render.cache import structure_values

    root = parse(data)                       # never raises; a tree of Part with offsets
    envelope(root.fields)                    # b'("date" "subject" ...)' wire bytes
    bodystructure(root) / body(root)         # wire bytes, with / without extension data
    vals = await structure_values(mailbox, uid, source.read)  # cached in the index:
    vals.envelope / vals.body / vals.bodystructure            #   ready wire bytes
    root = vals.part_tree()                  #   offsets, no re-read (None -> parse again)

    sec = S.parse_section(b"1.2.HEADER.FIELDS (From)")  # or build S.Section(part, text, fields)
    S.extract(data, root, sec)               # BODY[sec] bytes; S.partial(value, origin, length)
    S.section_range(root, sec)               # (start, end) to stream with read_range, or None
    S.header_range(root, sec) + S.filter_header(block, sec)  # HEADER.FIELDS from a range
    S.nul_safe(value)                        # NUL -> 0x80 for BODY[] literals (Dovecot)
    S.binary(data, root, sec.part)           # BINARY[part]; raises SectionError(UNKNOWN_CTE)
    S.binary_size(data, root, sec.part)      # BINARY.SIZE[part]
    S.binary_range(root, sec.part)           # (start, end, cte): read_range + S.decode_body
    S.binary_literal8(root, sec.part, value) # send as ~{n} (Dovecot's choice) or {n}

    mt = T.MessageText(data, root)           # SEARCH: decodes once, per message
    mt.header_contains("subject", needle)    # HEADER/SUBJECT/FROM/TO/CC/BCC
    mt.body_contains(needle) / mt.text_contains(needle)      # BODY / TEXT
    T.sent_date(root.fields)                 # SENTBEFORE/SENTON/SENTSINCE (date or None)
    T.sort_date / sort_subject / sort_mailbox / display_name   # SORT keys (RFC 5256, 5957)
    T.base_subject_info / message_id_of / references_of        # THREAD (RFC 5256)
"""
