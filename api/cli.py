"""`python -m api ...`: serve, migrate, and manage sites, cameras, tokens and accounts."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from api import migrate
from api.db import make_engine, make_session_factory, session_scope
from api.logs import logging_config
from api.models import User
from api.responses import ConfigVersionOut
from api.schemas import MAX_NOTE, SiteIn, UserIn
from api.services import camera_config, partitions, registry, tokens, users
from api.services.errors import DomainError, NotFoundError
from api.services.scope import EVERYONE_PRIVATE
from api.settings import Settings
from contract.camera import CameraSetup
from contract.site import ConfigError, load_config, load_yaml_model

T = TypeVar("T")

Command = Callable[[argparse.Namespace, Settings], int]


def run_in_session(settings: Settings, work: Callable[[Session], T]) -> T:
    """One transaction against the configured database; returns what ``work`` returned."""
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            result = work(session)
    finally:
        engine.dispose()
    return result


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Forwarded headers are believed only from TALLY_TRUSTED_PROXIES: anyone else could pick
    the address the per-IP limits count."""
    import uvicorn

    from api.app import create_app

    if args.proxy_headers and not settings.trusted_proxies:
        raise DomainError(
            "--proxy-headers needs TALLY_TRUSTED_PROXIES, the proxies' IPs or CIDRs as a JSON "
            "list (e.g. '[\"10.0.0.2\"]'); with it set the flag is not needed"
        )
    if not args.no_migrate:
        migrate.upgrade(settings.database_url)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=logging_config(args.log_level.upper()),
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies,
    )
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    if args.downgrade:
        migrate.downgrade(settings.database_url, args.downgrade)
    else:
        migrate.upgrade(settings.database_url, args.revision)
    return 0


def cmd_add_site(args: argparse.Namespace, settings: Settings) -> int:
    spec = SiteIn(
        id=args.id,
        name=args.name,
        road=args.road,
        lat=args.lat,
        lon=args.lon,
        timezone=args.timezone,
        description=args.description,
        public=args.public,
        listed=not args.unlisted,
    )
    run_in_session(settings, lambda s: registry.create_site(s, spec))
    print(spec.id)
    return 0


def cmd_add_camera(args: argparse.Namespace, settings: Settings) -> int:
    """The camera's set-up in the file becomes a configuration version: from registration on
    the API holds what the camera counts with, and editors change it there."""
    config = load_config(args.config)
    configured = next((c for c in config.cameras if c.id == args.camera_id), None)
    if configured is None:
        known = ", ".join(c.id for c in config.cameras)
        raise NotFoundError(f"{args.config}: no camera {args.camera_id!r} (cameras: {known})")

    def register(session: Session) -> int:
        stored = camera_config.register_from_site_file(
            session,
            configured,
            args.site,
            replace=args.replace,
            note=f"registered from {args.config.name} (revision {config.config_version})",
        )
        return stored.version

    version = run_in_session(settings, register)
    print(configured.id)
    print(f"configuration version {version}", file=sys.stderr)
    return 0


def read_setup(path: Path) -> CameraSetup:
    """A camera set-up from a YAML or JSON file; every problem on its own line, located."""
    return load_yaml_model(path, CameraSetup)


def cmd_config_show(args: argparse.Namespace, settings: Settings) -> int:
    """The set-up as JSON on stdout (what `camera-config set` reads back), the version's
    history line on stderr."""
    view = run_in_session(
        settings, lambda s: camera_config.config_view(s, EVERYONE_PRIVATE, args.camera)
    )
    print(json.dumps(view.setup.model_dump(mode="json"), indent=2))
    print(describe_version(view), file=sys.stderr)
    return 0


def cmd_config_set(args: argparse.Namespace, settings: Settings) -> int:
    setup = read_setup(args.file)

    def save(session: Session) -> int:
        return camera_config.save_config(session, args.camera, setup, note=args.note).version

    version = run_in_session(settings, save)
    print(f"{args.camera}: configuration version {version}")
    return 0


def describe_version(version: ConfigVersionOut) -> str:
    at = f"{version.created_at:%Y-%m-%d %H:%M}Z"
    return "\t".join([str(version.version), at, version.created_by, version.note])


def cmd_config_history(args: argparse.Namespace, settings: Settings) -> int:
    lines = run_in_session(
        settings,
        lambda s: [
            describe_version(v)
            for v in camera_config.version_history(s, EVERYONE_PRIVATE, args.camera)
        ],
    )
    print("\n".join(["version\tsaved\tby\tnote", *lines]))
    return 0


def cmd_issue_token(args: argparse.Namespace, settings: Settings) -> int:
    def issue(session: Session) -> tokens.IssuedToken:
        key, camera = settings.secret_key, args.camera
        lifetime = timedelta(days=args.expires_in_days) if args.expires_in_days else None
        return tokens.issue_device_token(
            session, key, camera, rotate=args.rotate, lifetime=lifetime
        )

    issued = run_in_session(settings, issue)
    print(issued.token)
    return 0


def cmd_revoke_token(args: argparse.Namespace, settings: Settings) -> int:
    def revoke(session: Session) -> int:
        if args.token_id:
            if not tokens.revoke_token(session, args.token_id):
                raise NotFoundError(f"no live token {args.token_id!r}")
            return 1
        return tokens.revoke_camera_tokens(session, args.camera)

    revoked = run_in_session(settings, revoke)
    print(f"revoked {revoked} token(s)", file=sys.stderr)
    return 0


def cmd_create_admin_token(args: argparse.Namespace, settings: Settings) -> int:
    issued = run_in_session(
        settings, lambda s: tokens.create_admin_token(s, settings.secret_key, args.name)
    )
    print(issued.token)
    return 0


def piped_password() -> str | None:
    """One line of piped stdin; None on a terminal or when the pipe is empty."""
    if sys.stdin.isatty():
        return None
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r") if line else None


def typed_password(prompt: str) -> str:
    """A password typed twice on the terminal, without echo."""
    first = getpass.getpass(prompt)
    if getpass.getpass("again: ") != first:
        raise DomainError("the two passwords differ")
    return first


def cmd_add_user(args: argparse.Namespace, settings: Settings) -> int:
    spec = UserIn(email=args.email, display_name=args.name, role=args.role, site_ids=args.site)
    piped = piped_password()
    password = piped if piped is not None else users.generate_password()
    user = run_in_session(settings, lambda s: users.create_user(s, spec, password))
    print(f"created {user.email} ({user.role})", file=sys.stderr)
    if piped is None:
        print(password)
    return 0


def cmd_set_password(args: argparse.Namespace, settings: Settings) -> int:
    prompt = f"new password for {args.email}: "
    password = typed_password(prompt) if sys.stdin.isatty() else piped_password()
    if password is None:
        raise DomainError("no password on stdin")

    def change(session: Session) -> int:
        return users.set_password(session, users.require_user(session, args.email), password)

    ended = run_in_session(settings, change)
    print(f"password changed; {ended} session(s) ended", file=sys.stderr)
    return 0


def describe_user(user: User) -> str:
    sites = ",".join(sorted(users.site_ids_of(user) or ())) or "all sites"
    flags = [flag for flag, on in (("disabled", user.disabled), ("sso", user.oidc_subject)) if on]
    last = f"{user.last_login_at:%Y-%m-%d %H:%M}Z" if user.last_login_at else "never"
    return "\t".join([user.email, user.role, user.display_name, sites, last, *flags])


def cmd_list_users(_args: argparse.Namespace, settings: Settings) -> int:
    lines = run_in_session(settings, lambda s: [describe_user(u) for u in users.list_users(s)])
    print("\n".join(["email\trole\tname\tsites\tlast login", *lines]))
    return 0


def cmd_storage(_args: argparse.Namespace, settings: Settings) -> int:
    """Run daily (cron, a systemd timer, a scheduled job): retention is applied here only."""
    engine = make_engine(settings.database_url)
    try:
        done = partitions.maintain(engine, settings)
    finally:
        engine.dispose()
    print(json.dumps(dataclasses.asdict(done), indent=2))
    return 0


def days_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number of days in [low, high], else a one-line error."""

    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number of days from {low} to {high}")
        return int(text)

    return parse


def note_text(text: str) -> str:
    """An argparse type: a version note fits its column (the API bounds it the same way)."""
    if len(text) > MAX_NOTE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_NOTE} characters")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m api",
        description="Tally central API. The database is TALLY_DATABASE_URL "
        "(default: a SQLite file tally.db in the working directory).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    serve = add("serve", cmd_serve, "Run the API (migrates the database first)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate on start")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--proxy-headers",
        action="store_true",
        help="refuse to start unless TALLY_TRUSTED_PROXIES is set (X-Forwarded-For is believed "
        "from those proxies only, flag or not)",
    )

    mig = add("migrate", cmd_migrate, "Create or upgrade the schema")
    mig.add_argument("--revision", default="head", help="target revision (default head)")
    mig.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION (base: empty)")

    site = add("add-site", cmd_add_site, "Register a site")
    site.add_argument("--id", required=True, help="site id (lower-case label)")
    site.add_argument("--name", required=True, help="display name")
    site.add_argument("--road", default="", help="road name or number")
    site.add_argument("--lat", type=float, required=True, help="latitude (WGS 84)")
    site.add_argument("--lon", type=float, required=True, help="longitude (WGS 84)")
    site.add_argument("--timezone", default="UTC", help="IANA timezone (default UTC)")
    site.add_argument("--description", default="", help="free text")
    site.add_argument("--public", action="store_true", help="publish in the open-data feeds")
    site.add_argument(
        "--unlisted", action="store_true", help="leave its cameras out of the public register"
    )

    camera = add("add-camera", cmd_add_camera, "Register a camera from a worker's site config")
    camera.add_argument("--config", type=Path, required=True, help="the worker's site.yaml")
    camera.add_argument("--camera-id", required=True, help="camera id in that file")
    camera.add_argument("--site", required=True, help="site id the camera belongs to")
    camera.add_argument("--replace", action="store_true", help="update an existing camera")

    issue = add("issue-token", cmd_issue_token, "Issue a device token (printed on stdout only)")
    issue.add_argument("--camera", required=True, help="camera id")
    issue.add_argument("--rotate", action="store_true", help="revoke the camera's other tokens")
    issue.add_argument(
        "--expires-in-days",
        type=days_between(1, 3650),
        metavar="DAYS",
        help="the token stops working after DAYS days (1-3650; default: never)",
    )

    revoke = add("revoke-token", cmd_revoke_token, "Revoke device tokens")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--camera", help="revoke every token of this camera")
    which.add_argument("--token-id", help="revoke one token by its id")

    admin = add("create-admin-token", cmd_create_admin_token, "Create an admin token (stdout)")
    admin.add_argument("--name", required=True, help="who or what the token is for")

    user = add(
        "add-user",
        cmd_add_user,
        "Create a planner account; the password is read from piped stdin (one line), "
        "else generated and printed once on stdout",
    )
    user.add_argument("--email", required=True, help="e-mail address (the sign-in name)")
    user.add_argument("--name", required=True, help="display name")
    user.add_argument("--role", required=True, choices=["viewer", "editor", "admin"])
    user.add_argument(
        "--site", action="append", help="restrict to this site (repeat; default: every site)"
    )

    password = add(
        "set-password",
        cmd_set_password,
        "Set an account's password (stdin, one line; asked twice on a terminal); ends its sessions",
    )
    password.add_argument("--email", required=True, help="the account's e-mail")

    add("list-users", cmd_list_users, "List planner accounts (tab-separated)")
    add(
        "storage",
        cmd_storage,
        "Raw-row upkeep: create PostgreSQL's monthly partitions ahead and drop raw rows older "
        "than TALLY_RAW_RETENTION_DAYS (whole partitions; SQLite: batched deletes); rollups stay",
    )
    add_camera_config(commands)
    return parser


def add_camera_config(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`camera-config show|set|history CAMERA`: the versioned set-up the API holds."""
    group = commands.add_parser(
        "camera-config",
        help="Show, change or list a camera's versioned set-up",
        description="A camera's set-up (lines, zones, calibration, interval, classes), "
        "versioned in the API; workers pull the newest.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="Print the newest set-up as JSON (stdout)")
    show.set_defaults(handler=cmd_config_show)
    save = actions.add_parser(
        "set", help="Save a set-up (YAML or JSON file) as the next version; nothing on error"
    )
    save.set_defaults(handler=cmd_config_set)
    history = actions.add_parser("history", help="List the versions (tab-separated)")
    history.set_defaults(handler=cmd_config_history)
    for action in (show, save, history):
        action.add_argument("camera", metavar="CAMERA", help="camera id")
    save.add_argument("file", metavar="FILE", type=Path, help="the set-up, YAML or JSON")
    save.add_argument(
        "--note", default="", type=note_text, help=f"why, for the history (<= {MAX_NOTE} chars)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, and turn expected failures into a one-line message and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
        handler: Command = args.handler
        return handler(args, settings)
    except (DomainError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: {problems}", file=sys.stderr)
    return 1
