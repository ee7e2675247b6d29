"""Account and share-link commands: ``users ...`` and ``share ...``.

Run by the operator on the server (a trusted local actor, recorded in the
audit log as ``--actor``).  Passwords are typed at a hidden prompt or read
from standard input (``--password-stdin``); there is no default password and
no password option on the command line (it would end up in shell history).
"""
from __future__ import annotations

import argparse
import getpass
import sys

from ..config import Settings
from ..errors import AuthError, NotFoundError, StoreError


def _open(settings: Settings):
    from .repository import Store

    return Store.open(settings)


def _read_password(args, *, confirm: bool = True) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise AuthError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise AuthError("no terminal to ask for the password: pipe it in with --password-stdin")
    password = getpass.getpass("password: ")
    if confirm and getpass.getpass("password again: ") != password:
        raise AuthError("the two passwords differ")
    return password


def _clinic(store, value: str, actor: str, *, create: bool) -> int:
    if value.isdigit():
        return int(value)
    clinic_id = store.find_clinic(value)
    if clinic_id is None:
        if not create:
            raise NotFoundError(f"there is no clinic named {value!r}")
        clinic_id = store.create_clinic(value, actor=actor)
        print(f"created clinic {clinic_id}")
    return clinic_id


def cmd_users(args, settings: Settings) -> int:
    from .cli import _actor

    actor = _actor(args)
    with _open(settings) as store:
        if args.action == "add":
            from ..auth import check_password, normalize_username

            name = normalize_username(args.username)
            clinic_id = _clinic(store, args.clinic, actor, create=True)
            password = check_password(_read_password(args), name)
            uid = store.create_user(name, password, role=args.role, clinic_id=clinic_id,
                                    actor=actor)
            print(f"created account {uid} ({args.role}, clinic {clinic_id})")
        elif args.action == "list":
            for u in store.list_users():
                state = "disabled" if u.disabled else "active"
                last = u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "-"
                print(f"{u.id}\t{u.username}\t{u.role}\tclinic {u.clinic_id}\t{state}\t"
                      f"last sign-in {last}")
        elif args.action in ("disable", "enable"):
            u = store.set_user_disabled(args.username, args.action == "disable", actor=actor)
            print(f"account {u.id} {args.action}d")
        elif args.action == "reset-password":
            store.reset_password(args.username, _read_password(args), actor=actor)
            print("password changed; failed sign-ins cleared")
        elif args.action == "demo":
            from ..auth import write_demo_credentials

            clinic_id = _clinic(store, args.clinic, actor, create=True)
            username, password = store.ensure_demo_user(clinic_id=clinic_id)
            if password is None:
                print(f"the demo account {username!r} already exists (password unchanged)")
            else:
                path = write_demo_credentials(settings.data_dir, username, password)
                print(f"demo account {username!r} created; its password is in {path} "
                      "(readable by you only)")
    return 0


def cmd_share(args, settings: Settings) -> int:
    from .cli import _actor, _patient

    actor = _actor(args)
    with _open(settings) as store:
        if args.action == "create":
            token = store.create_share_link(_patient(store, args.patient).id, actor=actor,
                                            days=args.days)
            print(f"share token (shown once, valid {args.days} days):\n{token}")
        elif args.action == "list":
            for link in store.list_share_links(_patient(store, args.patient).id):
                state = "active" if link.active else ("revoked" if link.revoked_at
                                                      else "expired")
                print(f"{link.id}\t{state}\texpires {link.expires_at:%Y-%m-%d %H:%M}\t"
                      f"by {link.created_by}")
        elif args.action == "revoke":
            if args.link is None:
                raise StoreError("give the link id to revoke")
            link = store.revoke_share_link(args.link, actor=actor)
            print(f"share link {link.id} revoked")
    return 0


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add ``users`` and ``share`` to ``python -m analyzer``."""
    p = sub.add_parser("users", parents=[common], help="practitioner accounts")
    p.add_argument("action", choices=["add", "list", "disable", "enable", "reset-password",
                                      "demo"])
    p.add_argument("username", nargs="?", help="account name (add, disable, enable, "
                                               "reset-password)")
    p.add_argument("--role", choices=["admin", "practitioner", "read-only"],
                   default="practitioner", help="role of a new account")
    p.add_argument("--clinic", help="clinic name or id of a new account (created if new)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input instead of a prompt")
    p.set_defaults(func=_checked_users)

    p = sub.add_parser("share", parents=[common],
                       help="patient share links (read-only, expiring, revocable)")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("link", nargs="?", help="link id (revoke)")
    p.add_argument("--patient", help="patient code (create, list)")
    p.add_argument("--days", type=int, default=30, help="validity of a new link in days")
    p.set_defaults(func=_checked_share)


def _checked_users(args, settings: Settings) -> int:
    needs_name = args.action in ("add", "disable", "enable", "reset-password")
    if needs_name and not args.username:
        raise StoreError(f"users {args.action} needs a user name")
    if args.action in ("add", "demo") and not args.clinic:
        raise StoreError(f"users {args.action} needs --clinic (name or id)")
    return cmd_users(args, settings)


def _checked_share(args, settings: Settings) -> int:
    if args.action in ("create", "list") and not args.patient:
        raise StoreError(f"share {args.action} needs --patient")
    return cmd_share(args, settings)
