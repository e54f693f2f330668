#!/usr/bin/env python3
"""Drive a running Roost with Python's imaplib and smtplib, nothing else.

Run by integration/imap_python_test.go:

    python3 imaplib_client.py HOST IMAP_PORT SMTP_PORT USER PASSWORD IMAPS_PORT CA_FILE

Each step prints one "step: ..." line; the first failed check raises
Failure, prints the exchange that failed and exits 1. imaplib's own
traps (CLIENTS.md): it keeps the pre-login capability list, its expunge()
answers [None] once QRESYNC is enabled, and Python 3.11 has no IDLE helper,
so IDLE is sent by hand.
"""

import imaplib
import re
import smtplib
import ssl
import sys
import time


class Failure(Exception):
    pass


def check(cond, what, got=None):
    if not cond:
        raise Failure("%s (got %r)" % (what, got))


def ok(res, what):
    typ, data = res
    check(typ == "OK", what + ": tagged OK", res)
    return data


def step(name):
    print("step:", name, flush=True)


MSG_PLAIN = (
    b"From: Alice Example <alice@example.net>\r\n"
    b"To: Python <py@example.org>\r\n"
    b"Subject: plain hello\r\n"
    b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <plain.1@example.net>\r\n"
    b"\r\n"
    b"Hello from imaplib.\r\n"
    b"Second line with searchword zebra.\r\n"
)

MSG_MULTI = (
    b"From: Bob <bob@example.net>\r\n"
    b"To: py@example.org\r\n"
    b"Subject: multipart report\r\n"
    b"Date: Tue, 24 Nov 2026 11:30:00 +0100\r\n"
    b"Message-ID: <multi.2@example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The text part.\r\n"
    b"--b1\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgcICQ==\r\n"
    b"--b1--\r\n"
)

MSG_UTF8 = (
    "From: Carl <carl@example.net>\r\n"
    "To: py@example.org\r\n"
    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Berlin\r\n"
    "Date: Wed, 25 Nov 2026 09:00:00 +0000\r\n"
    "Message-ID: <utf8.3@example.net>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Viele Grüße.\r\n"
).encode("utf-8")


def fetch_parts(data):
    """imaplib's FETCH data: tuples (b'n (ITEM {len}', payload) and bytes."""
    return [d for d in data if d is not None]


def flags_of(data):
    text = b" ".join(d[0] if isinstance(d, tuple) else d for d in fetch_parts(data))
    m = re.search(rb"FLAGS \(([^)]*)\)", text)
    check(m is not None, "FLAGS in FETCH", data)
    return set(m.group(1).decode().split())


def uid_of(M, seq):
    data = ok(M.fetch(str(seq), "(UID)"), "FETCH UID")
    m = re.search(rb"UID (\d+)", data[0])
    check(m is not None, "UID in FETCH", data)
    return m.group(1).decode()


def read_until(M, pattern, what):
    """Read raw lines until one matches pattern (during IDLE)."""
    seen = []
    while True:
        line = M.readline()
        check(line != b"", what + ": connection closed", seen)
        seen.append(line)
        if re.match(pattern, line):
            return line, seen


def main():
    host, port, smtp_port, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    imaps_port, cafile = int(sys.argv[6]), sys.argv[7]

    step("login")
    M = imaplib.IMAP4(host, port, timeout=30)
    pre = M.capabilities
    check("IMAP4REV1" in pre, "IMAP4rev1 in greeting capabilities", pre)
    check("AUTH=PLAIN" in pre, "AUTH=PLAIN offered on loopback", pre)
    ok(M.login(user, pw), "LOGIN")

    step("capability after login")
    caps = ok(M.capability(), "CAPABILITY")[0].decode().upper().split()
    for want in ("IMAP4REV1", "IMAP4REV2", "IDLE", "MOVE", "UIDPLUS", "ENABLE", "QRESYNC", "CONDSTORE", "SPECIAL-USE"):
        check(want in caps, want + " in CAPABILITY after login", caps)
    check(not any(c.startswith("AUTH=") for c in caps), "no AUTH= once logged in (capabilities change at LOGIN, RFC 9051 6.2.3)", caps)

    step("list")
    lines = [l.decode() for l in ok(M.list(), "LIST")]
    names = {}
    for l in lines:
        m = re.match(r'\(([^)]*)\) (?:"/"|NIL) "?([^"]*)"?$', l)
        check(m is not None, "LIST line shape", l)
        names[m.group(2)] = m.group(1)
    for mb, use in (("INBOX", None), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                    ("Junk", "\\Junk"), ("Archive", "\\Archive")):
        check(mb in names, "mailbox %s listed" % mb, lines)
        if use:
            check(use in names[mb], "%s has %s (RFC 6154)" % (mb, use), names[mb])

    step("create, rename, delete")
    ok(M.create("Projects"), "CREATE Projects")
    ok(M.create("Projects/2026"), "CREATE Projects/2026")
    check(M.create("Projects")[0] == "NO", "CREATE of an existing mailbox is NO (RFC 9051 6.3.4)")
    ok(M.rename("Projects", "Work"), "RENAME Projects Work")
    listed = " ".join(l.decode() for l in ok(M.list('""', "*"), "LIST after rename"))
    check('"Work"' in listed or " Work" in listed, "Work listed after RENAME", listed)
    check("Work/2026" in listed, "RENAME moves inferiors (RFC 9051 6.3.6)", listed)
    check("Projects" not in listed, "old name gone after RENAME", listed)
    # A modified UTF-7 name (RFC 9051 section 5.1.3) round-trips.
    ok(M.create("Entw&APw-rfe"), "CREATE modified UTF-7 name")
    listed = " ".join(l.decode() for l in ok(M.list('""', "Entw*"), "LIST Entw*"))
    check("Entw&APw-rfe" in listed, "modified UTF-7 name listed", listed)
    ok(M.delete("Entw&APw-rfe"), "DELETE utf-7 name")
    ok(M.delete("Work/2026"), "DELETE Work/2026")
    ok(M.delete("Work"), "DELETE Work")
    check(M.delete("Work")[0] == "NO", "DELETE of a missing mailbox is NO")
    listed = " ".join(l.decode() for l in ok(M.list('""', "*"), "LIST after delete"))
    check("Work" not in listed, "Work gone after DELETE", listed)
    check(M.delete("INBOX")[0] == "NO", "DELETE INBOX is NO (RFC 9051 6.3.5)")

    step("append")
    date = imaplib.Time2Internaldate(time.mktime((2026, 11, 23, 10, 0, 0, 0, 0, -1)))
    data = ok(M.append("INBOX", "(\\Flagged)", date, MSG_PLAIN), "APPEND plain")
    check(b"APPENDUID" in data[0], "APPENDUID (RFC 4315 3)", data)
    ok(M.append("INBOX", None, None, MSG_MULTI), "APPEND multipart")
    ok(M.append("INBOX", "(\\Seen $Work)", None, MSG_UTF8), "APPEND utf-8")
    res = M.append("NoSuchBox", None, None, MSG_PLAIN)
    check(res[0] == "NO" and b"[TRYCREATE]" in res[1][0], "APPEND to a missing mailbox: NO [TRYCREATE] (RFC 9051 6.3.12)", res)

    step("select")
    data = ok(M.select("INBOX"), "SELECT INBOX")
    check(data[0] == b"3", "SELECT reports 3 EXISTS", data)
    uidvalidity = M.response("UIDVALIDITY")[1][0]
    check(uidvalidity is not None and uidvalidity.isdigit(), "UIDVALIDITY after SELECT", uidvalidity)

    step("search")
    check(ok(M.search(None, "ALL"), "SEARCH ALL")[0].split() == [b"1", b"2", b"3"], "SEARCH ALL")
    check(ok(M.search(None, "FROM", '"alice"'), "SEARCH FROM")[0].split() == [b"1"], "SEARCH FROM alice")
    check(ok(M.search(None, "SUBJECT", "multipart"), "SEARCH SUBJECT")[0].split() == [b"2"], "SEARCH SUBJECT")
    check(ok(M.search(None, "BODY", "zebra"), "SEARCH BODY")[0].split() == [b"1"], "SEARCH BODY zebra")
    check(ok(M.search(None, "FLAGGED"), "SEARCH FLAGGED")[0].split() == [b"1"], "SEARCH FLAGGED")
    check(ok(M.search(None, "UNSEEN"), "SEARCH UNSEEN")[0].split() == [b"1", b"2"], "SEARCH UNSEEN")
    check(ok(M.search(None, "KEYWORD", "$Work"), "SEARCH KEYWORD")[0].split() == [b"3"], "SEARCH KEYWORD $Work")
    check(ok(M.search(None, "SINCE", "24-Nov-2026", "NOT", "SEEN"), "SEARCH SINCE")[0].split() == [b"2"],
          "SEARCH SINCE (internal date) NOT SEEN")
    # A UTF-8 search string in a literal, matching the decoded subject.
    M.literal = "Grüße".encode("utf-8")
    check(ok(M.search("UTF-8", "SUBJECT"), "SEARCH CHARSET UTF-8")[0].split() == [b"3"], "SEARCH CHARSET UTF-8 SUBJECT")
    uids = ok(M.uid("SEARCH", "ALL"), "UID SEARCH")[0].split()
    check(len(uids) == 3, "UID SEARCH ALL gives 3 UIDs", uids)

    step("fetch")
    f1 = flags_of(ok(M.fetch("1", "(FLAGS)"), "FETCH FLAGS"))
    check("\\Flagged" in f1 and "\\Seen" not in f1, "APPENDed flags kept", f1)
    check("$Work" in flags_of(ok(M.fetch("3", "(FLAGS)"), "FETCH 3 FLAGS")), "APPENDed keyword kept")
    env = ok(M.fetch("1", "(ENVELOPE)"), "FETCH ENVELOPE")[0]
    check(b'"plain hello"' in env and b'"Alice Example" NIL "alice" "example.net"' in env,
          "ENVELOPE subject and from (RFC 9051 7.5.2)", env)
    check(b"<plain.1@example.net>" in env, "ENVELOPE message-id", env)
    data = ok(M.fetch("2", "(BODY.PEEK[])"), "FETCH BODY.PEEK[]")
    check(isinstance(data[0], tuple) and data[0][1] == MSG_MULTI, "BODY[] byte-exact", data)
    data = ok(M.fetch("2", "(RFC822.SIZE)"), "FETCH RFC822.SIZE")
    check(("RFC822.SIZE %d" % len(MSG_MULTI)).encode() in data[0], "RFC822.SIZE is the octet count", data)
    data = ok(M.fetch("2", "(BODY.PEEK[]<0.10>)"), "FETCH partial")
    check(isinstance(data[0], tuple) and b"BODY[]<0>" in data[0][0] and data[0][1] == MSG_MULTI[:10],
          "partial BODY[]<0> (RFC 9051 6.4.5)", data)
    data = ok(M.fetch("2", "(BODY.PEEK[]<20.15>)"), "FETCH partial 20.15")
    check(isinstance(data[0], tuple) and b"BODY[]<20>" in data[0][0] and data[0][1] == MSG_MULTI[20:35],
          "partial BODY[]<20>", data)
    data = ok(M.fetch("2", "(BODY.PEEK[1])"), "FETCH BODY[1]")
    check(isinstance(data[0], tuple) and data[0][1] == b"The text part.", "BODY[1] is the text part", data)
    data = ok(M.fetch("2", "(BODY.PEEK[HEADER.FIELDS (Subject)])"), "FETCH HEADER.FIELDS")
    check(isinstance(data[0], tuple) and data[0][1] == b"Subject: multipart report\r\n\r\n", "HEADER.FIELDS", data)
    data = ok(M.fetch("2", "(BODYSTRUCTURE)"), "FETCH BODYSTRUCTURE")
    bs = b" ".join(d if isinstance(d, bytes) else d[0] for d in fetch_parts(data)).upper()
    check(b'"MIXED"' in bs and b'"BASE64"' in bs and b'"OCTET-STREAM"' in bs, "BODYSTRUCTURE multipart/mixed", data)
    check("\\Seen" not in flags_of(ok(M.fetch("2", "(FLAGS)"), "FETCH FLAGS after PEEK")), "BODY.PEEK does not set \\Seen")
    data = ok(M.fetch("2", "(BODY[TEXT])"), "FETCH BODY[TEXT]")
    check(isinstance(data[0], tuple) and MSG_MULTI.endswith(data[0][1]), "BODY[TEXT]", data)
    check("\\Seen" in flags_of(ok(M.fetch("2", "(FLAGS)"), "FETCH FLAGS after BODY[]")),
          "BODY[TEXT] sets \\Seen (RFC 9051 6.4.5)")

    step("store")
    data = ok(M.store("1", "+FLAGS", "(\\Seen $Label1)"), "STORE +FLAGS")
    f = flags_of(data)
    check({"\\Seen", "$Label1", "\\Flagged"} <= f, "STORE answers the new flags", f)
    data = ok(M.store("1", "-FLAGS.SILENT", "(\\Flagged)"), "STORE -FLAGS.SILENT")
    check(all(d is None for d in data), "STORE .SILENT returns no FETCH (RFC 9051 6.4.6)", data)
    f = flags_of(ok(M.fetch("1", "(FLAGS)"), "FETCH after STORE"))
    check("\\Flagged" not in f and "\\Seen" in f, "-FLAGS removed \\Flagged", f)
    data = ok(M.uid("STORE", uids[1], "FLAGS", "(\\Answered)"), "UID STORE FLAGS")
    check(flags_of(data) == {"\\Answered"}, "UID STORE FLAGS replaces", data)

    step("copy")
    data = ok(M.copy("1", "Archive"), "COPY")
    check(b"COPYUID" in data[0], "COPYUID (RFC 4315 3)", data)
    check(M.copy("1", "NoSuchBox")[0] == "NO", "COPY to a missing mailbox is NO")
    st = ok(M.status("Archive", "(MESSAGES UNSEEN)"), "STATUS Archive")
    check(b"MESSAGES 1" in st[0], "COPY landed in Archive", st)

    step("move")
    uid3 = uid_of(M, 3)
    typ, data = M.uid("MOVE", uid3, "Trash")
    check(typ == "OK", "UID MOVE", (typ, data))
    check(M.response("EXPUNGE")[1][0] == b"3", "MOVE sends EXPUNGE for the moved message (RFC 6851 3.3)", M.untagged_responses)
    check(M.response("COPYUID")[1][0] is not None, "MOVE sends COPYUID (RFC 6851 4.3)", M.untagged_responses)
    data = ok(M.select("INBOX"), "reSELECT INBOX")
    check(data[0] == b"2", "INBOX holds 2 after MOVE", data)
    st = ok(M.status("Trash", "(MESSAGES)"), "STATUS Trash")
    check(b"MESSAGES 1" in st[0], "MOVE landed in Trash", st)
    # MOVE by sequence number through _simple_command.
    typ, data = M._simple_command("MOVE", "2", "Archive")
    check(typ == "OK", "MOVE 2 Archive", (typ, data))
    ok(M.append("INBOX", None, None, MSG_MULTI), "APPEND again")

    step("expunge")
    ok(M.select("INBOX"), "SELECT INBOX")
    ok(M.store("1", "+FLAGS", "\\Deleted"), "STORE \\Deleted")
    data = ok(M.expunge(), "EXPUNGE")
    check(data == [b"1"], "EXPUNGE reports seq 1", data)
    data = ok(M.select("INBOX"), "SELECT after EXPUNGE")
    check(data[0] == b"1", "1 message left", data)

    step("enable qresync, expunge gives VANISHED")
    # imaplib allows ENABLE only in the authenticated state.
    ok(M.unselect(), "UNSELECT")
    ok(M.enable("QRESYNC"), "ENABLE QRESYNC")
    enabled = M.response("ENABLED")[1][0] or b""
    check(b"QRESYNC" in enabled.upper(), "ENABLED QRESYNC (RFC 5161 3.2)", enabled)
    ok(M.append("INBOX", None, None, MSG_PLAIN), "APPEND for QRESYNC")
    data = ok(M.select("INBOX"), "SELECT after ENABLE")
    check(data[0] == b"2", "2 messages", data)
    hms = M.response("HIGHESTMODSEQ")[1][0]
    check(hms is not None and hms.isdigit(), "HIGHESTMODSEQ after SELECT with QRESYNC enabled (RFC 7162 3.1.2.1)", hms)
    uid1 = uid_of(M, 1)
    ok(M.store("1", "+FLAGS.SILENT", "\\Deleted"), "STORE \\Deleted")
    typ, data = M.expunge()
    check(typ == "OK" and data == [None], "EXPUNGE after QRESYNC answers no EXPUNGE", (typ, data))
    van = M.response("VANISHED")[1]
    check(van[0] == uid1.encode(), "VANISHED %s (RFC 7162 3.2.10)" % uid1, van)

    step("idle")
    # smtplib and a second IMAP session each add a message while this one idles.
    tag = M._new_tag()
    M.send(tag + b" IDLE\r\n")
    line = M.readline()
    check(line.startswith(b"+"), "IDLE continuation (RFC 2177 3)", line)
    with smtplib.SMTP(host, smtp_port, timeout=30) as s:
        s.sendmail("sender@example.net", [user], MSG_PLAIN.replace(b"plain.1@", b"smtp.4@"))
    line, seen = read_until(M, rb"\* \d+ EXISTS", "EXISTS after SMTP")
    check(line.strip() == b"* 2 EXISTS", "EXISTS 2 after SMTP delivery", seen)
    N = imaplib.IMAP4(host, port, timeout=30)
    ok(N.login(user, pw), "second LOGIN")
    ok(N.append("INBOX", None, None, MSG_UTF8), "second session APPEND")
    N.logout()
    line, seen = read_until(M, rb"\* \d+ EXISTS", "EXISTS after APPEND")
    check(line.strip() == b"* 3 EXISTS", "EXISTS 3 after the other session's APPEND", seen)
    M.send(b"DONE\r\n")
    line, seen = read_until(M, re.escape(tag) + rb" ", "IDLE end")
    check(line.startswith(tag + b" OK"), "IDLE tagged OK after DONE", seen)
    data = ok(M.fetch("2:3", "(BODY.PEEK[HEADER.FIELDS (Message-ID)])"), "FETCH new messages")
    got = b"".join(d[1] for d in fetch_parts(data) if isinstance(d, tuple))
    check(b"<smtp.4@example.net>" in got and b"<utf8.3@example.net>" in got, "new messages readable", data)
    ok(M.noop(), "NOOP")

    step("logout")
    typ, _ = M.logout()
    check(typ == "BYE", "LOGOUT answers BYE", typ)

    # TLS with full verification against the server's self-signed
    # certificate (its SANs name 127.0.0.1): implicit TLS (RFC 8314) and
    # STARTTLS (RFC 9051 section 6.2.1).
    step("imaps")
    ctx = ssl.create_default_context(cafile=cafile)
    S = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx, timeout=30)
    ok(S.login(user, pw), "LOGIN over implicit TLS")
    data = ok(S.select("INBOX", readonly=True), "EXAMINE over TLS")
    check(data[0] == b"3", "3 messages over TLS", data)
    S.logout()
    step("starttls")
    T = imaplib.IMAP4(host, port, timeout=30)
    check("STARTTLS" in T.capabilities, "STARTTLS offered on the plain port", T.capabilities)
    ok(T.starttls(ssl_context=ctx), "STARTTLS")
    caps = ok(T.capability(), "CAPABILITY after STARTTLS")[0].decode().upper().split()
    check("STARTTLS" not in caps, "no STARTTLS after STARTTLS (RFC 9051 6.2.1)", caps)
    ok(T.login(user, pw), "LOGIN after STARTTLS")
    T.logout()
    print("ALL OK", flush=True)


if __name__ == "__main__":
    try:
        main()
    except (Failure, imaplib.IMAP4.error, OSError, smtplib.SMTPException) as e:
        print("FAIL:", type(e).__name__, e, flush=True)
        sys.exit(1)
