#!/usr/bin/env python3
"""An SMTP server for the test suite: aiosmtpd, with a handler that writes
every message it accepts into MAILDIR/<envelope sender>/<time>-<n>.eml
(the layout the test kit reads, see tests/mail_sink.rs).

    python .ci/smtp_sink.py --port 2525 --maildir /tmp/vf-mail

then run the suite with VITALFARM_TEST_SMTP=127.0.0.1:2525 and
VITALFARM_TEST_SMTP_MAILDIR=/tmp/vf-mail. It serves until killed.
"""

import argparse
import itertools
import os
import re
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

_seq = itertools.count()


def sender_folder(sender: str) -> str:
    """The same rule as `mail_sink::sender_folder` in the test kit."""
    s = sender.strip().strip("<>").lower()
    return re.sub(r"[^a-z0-9.@-]", "_", s)


class MaildirHandler:
    def __init__(self, root: str):
        self.root = root

    async def handle_DATA(self, server, session, envelope):
        folder = os.path.join(self.root, sender_folder(envelope.mail_from or ""))
        os.makedirs(folder, exist_ok=True)
        name = "%020d-%08d.eml" % (time.time_ns(), next(_seq))
        tmp = os.path.join(folder, "." + name + ".tmp")
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(tmp, "wb") as f:
            f.write(data)
        # Renamed into place, so the kit never reads half a message.
        os.replace(tmp, os.path.join(folder, name))
        return "250 OK: queued"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--maildir", required=True)
    args = p.parse_args()
    os.makedirs(args.maildir, exist_ok=True)
    handler = MaildirHandler(args.maildir)
    controller = Controller(
        handler,
        hostname=args.host,
        port=args.port,
        # 8BITMIME and SMTPUTF8 as a real relay offers them; the raw bytes
        # are kept as they arrived.
        server_kwargs={"decode_data": False, "enable_SMTPUTF8": True},
    )
    controller.start()
    print(f"smtp sink on {args.host}:{args.port}, writing to {args.maildir}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
