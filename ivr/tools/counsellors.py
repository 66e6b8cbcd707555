"""`ivr counsellor add` and `ivr counsellor reset`: give a counsellor their own id and PIN, or a new PIN, in the
partners file (--partners, else IVR_PARTNERS_FILE).

The PIN is read without echo (getpass, twice), or as one line from stdin with --pin-stdin (scripts, tests). A PIN
under 6 digits, of one digit repeated or running up or down the keypad is refused. Only its scrypt hash is written
(`pin_hash`, salt and parameters included); a `pin:` written in clear beside it is removed. The file keeps its
comments and layout (ruamel.yaml, of the `tools` extra), is validated with the routing file before it replaces the
old one, and is written 0600 when new. Neither the PIN nor its hash is ever printed.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import secrets
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from common.configfile import ConfigError
from ivr.tools.cli_common import Refused, file_settings
from routing.check import load_routing
from routing.pins import COUNSELLOR_ID, hash_pin, weak_pin


def partners_file(args: argparse.Namespace) -> Path:
    """--partners, else IVR_PARTNERS_FILE; a refusal when neither is given."""
    path = args.partners or file_settings(args).partners_file
    if not path:
        raise Refused(f"ivr counsellor {args.counsellor_command}: no partners file: give --partners FILE or set "
                      "IVR_PARTNERS_FILE")
    return Path(path)


def read_pin(args: argparse.Namespace) -> str:
    """The new PIN: one line of stdin with --pin-stdin, else typed twice without echo; refused when weak."""
    if args.pin_stdin:
        pin = sys.stdin.readline().strip()
    else:
        pin = getpass.getpass(f"New PIN for counsellor {args.id} (6-12 digits): ").strip()
        if getpass.getpass("The same PIN again: ").strip() != pin:
            raise Refused(f"ivr counsellor {args.counsellor_command}: the two PINs differ; nothing was written")
    problem = weak_pin(pin)
    if problem is not None:
        raise Refused(f"ivr counsellor {args.counsellor_command}: {problem}; nothing was written")
    return pin


def _entries(data: Any, path: Path) -> Any:
    """The file's `counsellors:` list, made when absent."""
    from ruamel.yaml.comments import CommentedSeq

    if not isinstance(data.get("counsellors"), list):
        if data.get("counsellors") is not None:
            raise Refused(f"{path}: counsellors: must be a list; fix the file first")
        data["counsellors"] = CommentedSeq()
    return data["counsellors"]


def _write(path: Path, data: Any, routing_file: Path) -> None:
    """Write `data` beside `path`, validate it with the routing file, then put it in place, 0600 (it holds PIN
    hashes and partners' numbers: a looser mode an earlier copy had is not kept)."""
    from ivr.tools.prompts import round_trip_yaml
    mode = 0o600
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".yaml", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            round_trip_yaml().dump(data, f)
        try:
            load_routing(routing_file, partners_file=Path(tmp))
        except ConfigError as e:  # exit 1, the file as it was; the problems name it, not the temporary copy
            raise ConfigError([replace(p, file=str(path)) if p.file == tmp else p for p in e.problems]) from None
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cmd_counsellor(args: argparse.Namespace) -> int:
    """Add a counsellor with their own id and PIN, or set a new PIN for one; only the PIN's hash is written."""
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    from ivr.tools.prompts import round_trip_yaml

    path = partners_file(args)
    command = f"ivr counsellor {args.counsellor_command}"
    if not re.fullmatch(COUNSELLOR_ID, args.id):
        raise Refused(f"{command}: the id is 4 to 8 digits, keyed on the phone (e.g. 1001); got '{args.id}'")
    if args.counsellor_command == "reset" and not path.exists():
        raise Refused(f"{command}: {path} does not exist")
    data = round_trip_yaml().load(path.read_text(encoding="utf-8")) if path.exists() else None
    data = CommentedMap() if data is None else data
    entries = _entries(data, path)
    found = next((e for e in entries if hasattr(e, "get") and str(e.get("id")) == args.id), None)
    if args.counsellor_command == "add" and found is not None:
        raise Refused(f"{command}: counsellor {args.id} is already in {path}; `ivr counsellor reset --id {args.id}` "
                      "sets a new PIN")
    if args.counsellor_command == "reset" and found is None:
        raise Refused(f"{command}: no counsellor {args.id} in {path}; `ivr counsellor add` adds one")
    pin_hash = DoubleQuotedScalarString(hash_pin(read_pin(args), secrets.token_bytes(16)))
    if found is None:
        found = CommentedMap([("id", DoubleQuotedScalarString(args.id)), ("partner", args.partner),
                              ("pin_hash", pin_hash)])
        if args.number:
            found["numbers"] = [DoubleQuotedScalarString(n) for n in args.number]
        entries.append(found)
    else:
        found["pin_hash"] = pin_hash
        found.pop("pin", None)
    routing_file = Path(args.routing or file_settings(args).routing_file)
    _write(path, data, routing_file)
    done = "added to" if args.counsellor_command == "add" else "has a new PIN in"
    print(f"counsellor {args.id} ({found.get('partner')}) {done} {path}")
    return 0


def register(sub: Any) -> None:
    """Add `ivr counsellor add` and `ivr counsellor reset` to the `ivr` command's subparsers."""
    cs = sub.add_parser("counsellor", help="counsellors' line logins: each counsellor's own id and PIN")
    cs.set_defaults(func=cmd_counsellor)
    css = cs.add_subparsers(dest="counsellor_command", required=True)
    add = css.add_parser("add", help="add a counsellor with their own id and PIN (PIN asked for, never echoed)")
    add.add_argument("--partner", required=True, help="the partner id they answer for (routing file)")
    add.add_argument("--number", action="append", metavar="E164",
                     help="a phone they must call from (repeat for more; default: any phone)")
    reset = css.add_parser("reset", help="set a new PIN for a counsellor (forgotten, or written down)")
    for p in (add, reset):
        p.add_argument("--id", required=True, help="the counsellor's id: 4 to 8 digits, keyed on the phone")
        p.add_argument("--partners", help="the partners file (default: IVR_PARTNERS_FILE)")
        p.add_argument("--routing", help="the routing file it is checked against (default: IVR_ROUTING_FILE or the "
                       "shipped one)")
        p.add_argument("--pin-stdin", action="store_true", help="read the PIN as one line of stdin (scripts)")
