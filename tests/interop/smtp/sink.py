"""A real SMTP server for the end-to-end tests (aiosmtpd), keeping every message it accepts.

usage: python sink.py --port PORT --dir DIR     listen on 127.0.0.1:PORT until SIGTERM/SIGINT
       python sink.py --check-requirements      exit 0: the pins of requirements.txt are installed

Each accepted message becomes one file in DIR, named `NNNNNN-<ns since epoch>.eml` so that
sorting the names gives arrival order; it is written under a name starting with `.` and then
renamed, so a reader never sees half a file. The file is the message exactly as DATA carried
it, after one `X-Sink-Rcpt-To: <address>` line per envelope recipient (CRLF line ends).
`ready` is printed on stdout once the server listens. AUTH, if a client tries it, accepts any
credentials (no TLS: the tests' mails stay on the loopback).
"""
import argparse
import os
import signal
import sys
import time
from importlib import metadata
from pathlib import Path


def check_requirements() -> int:
    missing = []
    for line in (Path(__file__).parent / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, version = line.split("==")
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = "none"
        if have != version:
            missing.append(f"{name}=={version} (installed: {have})")
    try:
        import aiosmtpd.controller  # noqa: F401
    except ImportError as e:
        missing.append(f"aiosmtpd does not import: {e}")
    if missing:
        print("missing or different: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


class Sink:
    """The aiosmtpd handler: every message to a file of its own in `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count = len(list(folder.glob("*.eml")))  # a restart goes on counting

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = f"{self.count:06d}-{time.time_ns()}.eml"
        rcpt = b"".join(f"X-Sink-Rcpt-To: {r}\r\n".encode() for r in envelope.rcpt_tos)
        temp = self.folder / f".{name}.tmp"
        temp.write_bytes(rcpt + envelope.original_content)
        os.replace(temp, self.folder / name)
        return "250 OK"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check-requirements", action="store_true")
    parser.add_argument("--port", type=int)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if args.check_requirements:
        return check_requirements()
    if args.port is None or args.dir is None:
        parser.error("--port and --dir are required")

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    # Blocked before the server's thread starts, so that only sigwait below receives them.
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    args.dir.mkdir(parents=True, exist_ok=True)
    sink = Sink(args.dir)
    # The port may still be held for a moment by the previous run (a restart): retry briefly.
    for attempt in range(50):
        controller = Controller(
            sink,
            hostname="127.0.0.1",
            port=args.port,
            authenticator=lambda *_: AuthResult(success=True),
            auth_require_tls=False,
        )
        try:
            controller.start()
            break
        except OSError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    print("ready", flush=True)
    signal.sigwait(signals)
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
