"""FastAPI dependencies: database session, device authentication, principals and roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.datastructures import State

from api.coalesce import Coalescer
from api.limiting import RateLimits
from api.models import ApiToken, Camera
from api.schemas import Role
from api.services import login, users
from api.services.access import Principal
from api.services.scope import Audience
from api.services.tokens import (
    RecentTokens,
    TokenKind,
    hash_token,
    verify_token,
    verify_tokens,
)
from api.settings import Settings

bearer = HTTPBearer(auto_error=False, description="A device token (ingest) or an admin token")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, closed (and rolled back if uncommitted) afterwards."""
    with request.app.state.session_factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def client_ip(request: Request) -> str:
    """The caller's address as the server sees it (behind trusted proxies: the forwarded one)."""
    return request.client.host if request.client else "unknown"


def too_many_requests(retry_after_s: int) -> HTTPException:
    """429 with the Retry-After a well-behaved client waits for."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "rate limit exceeded; retry later",
        headers={"Retry-After": str(retry_after_s)},
    )


def authenticate(
    request: Request,
    session: Session,
    settings: Settings,
    credentials: HTTPAuthorizationCredentials | None,
    kind: TokenKind,
) -> ApiToken:
    """The live token of `kind` in the Authorization header, or 401 (429 when hammering)."""
    found = (
        verify_token(session, settings.secret_key, credentials.credentials, kind)
        if credentials is not None
        else None
    )
    call = BearerCall(credentials, client_ip(request))
    return judge_token(request.app.state, settings, call, kind, found)[0]


@dataclass(frozen=True, slots=True)
class BearerCall:
    """What judging a request's token needs of it: its bearer value and where it came from
    (requests judged together, off the request, carry this instead of the request)."""

    credentials: HTTPAuthorizationCredentials | None
    client_ip: str


def judge_token(
    state: State,
    settings: Settings,
    call: BearerCall,
    kind: TokenKind,
    found: tuple[ApiToken, Camera | None] | None,
) -> tuple[ApiToken, Camera | None]:
    """`found` (what `verify_token` made of the call's token), or 401 (429 when hammering).

    A live device token is remembered for the before-body gate (`refuse_unknown_device`), a
    refused one forgotten there.
    """
    limits: RateLimits = state.rate_limits
    if kind == "device" and call.credentials is not None:
        recent: RecentTokens = state.recent_tokens
        token_hash = hash_token(settings.secret_key, call.credentials.credentials)
        if found is None:
            recent.forget(token_hash)
        else:
            recent.remember(token_hash, found[0].expires_at)
    if found is None:
        if not limits.allow_failure(call.client_ip):
            raise too_many_requests(limits.retry_after_s(limits.per_ip_failures))
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"a valid {kind} token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


def authorize_device(
    request: Request,
    session: Session,
    settings: Settings,
    credentials: HTTPAuthorizationCredentials | None,
) -> Camera:
    """The camera a device token belongs to; every device request counts against its limit."""
    call = BearerCall(credentials, client_ip(request))
    camera = authorize_devices(request.app.state, session, settings, [call])[0]
    if isinstance(camera, HTTPException):
        raise camera
    return camera


def authorize_devices(
    state: State, session: Session, settings: Settings, calls: Sequence[BearerCall]
) -> list[Camera | HTTPException]:
    """`authorize_device` for several requests, in one read: each one's camera, or the
    error that refuses it."""
    limits: RateLimits = state.rate_limits
    outcomes: list[Camera | HTTPException] = []
    for judged in judge_device_tokens(state, session, settings, calls):
        if isinstance(judged, HTTPException):
            outcomes.append(judged)
            continue
        token, camera = judged
        if not limits.allow_token(token.id):
            outcomes.append(too_many_requests(limits.retry_after_s(limits.per_token)))
        elif camera is None:
            outcomes.append(
                HTTPException(status.HTTP_401_UNAUTHORIZED, "the token's camera no longer exists")
            )
        else:
            outcomes.append(camera)
    return outcomes


def judge_device_tokens(
    state: State, session: Session, settings: Settings, calls: Sequence[BearerCall]
) -> list[tuple[ApiToken, Camera | None] | HTTPException]:
    """`judge_token` for the device tokens of several requests, verified in one read."""
    offered = [c.credentials.credentials for c in calls if c.credentials is not None]
    verified = iter(verify_tokens(session, settings.secret_key, offered, "device"))
    outcomes: list[tuple[ApiToken, Camera | None] | HTTPException] = []
    for call in calls:
        found = next(verified) if call.credentials is not None else None
        try:
            outcomes.append(judge_token(state, settings, call, "device", found))
        except HTTPException as exc:
            outcomes.append(exc)
    return outcomes


def device_camera(
    request: Request, session: SessionDep, settings: SettingsDep, credentials: CredentialsDep
) -> Camera:
    """The camera of the request's device token (see `authorize_device`)."""
    return authorize_device(request, session, settings, credentials)


def check_device_tokens(state: State, calls: Sequence[BearerCall]) -> list[HTTPException | None]:
    """For each call, None when it carries a live device token, else its 401 (429 once an
    IP keeps failing): the before-body gate's check, for the requests that wait for it
    together, in one session and one read."""
    with state.session_factory() as session:
        judged = judge_device_tokens(state, session, state.settings, calls)
    return [outcome if isinstance(outcome, HTTPException) else None for outcome in judged]


async def refuse_unknown_device(request: Request) -> None:
    """Refuse a caller without a live device token from the headers alone, before its body is
    parsed. A token this process found live lately passes without a database read; the
    others wait together for one (`check_device_tokens`); the request's own transaction
    checks the token again (`authorize_device`)."""
    credentials = await bearer(request)
    recent: RecentTokens = request.app.state.recent_tokens
    settings = get_settings(request)
    known = credentials is not None and hash_token(settings.secret_key, credentials.credentials)
    if not known or known not in recent:
        gate: Coalescer[BearerCall, None] = request.app.state.device_gate
        await gate.submit(BearerCall(credentials, client_ip(request)))


def bearer_principal(
    request: Request,
    session: Session,
    settings: Settings,
    credentials: HTTPAuthorizationCredentials,
) -> Principal:
    """An admin token acts as an unrestricted admin; any other bearer value is a 401."""
    token = authenticate(request, session, settings, credentials, "admin")
    return Principal(actor=f"token:{token.id}", display_name=token.name, role="admin")


def cookie_principal(request: Request, session: Session, settings: Settings) -> Principal | None:
    """The account of a live login-session cookie; None without one (or when it has ended).

    A state-changing request carried by the cookie must also carry the session's CSRF token:
    a cookie is sent by the browser whoever asks it to, the header only by our own pages.
    """
    cookie = request.cookies.get(login.SESSION_COOKIE)
    found = login.resolve_session(session, settings, cookie) if cookie else None
    if found is None:
        return None
    record, user = found
    if request.method in STATE_CHANGING and not login.csrf_matches(
        record, request.headers.get(login.CSRF_HEADER)
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"missing or wrong {login.CSRF_HEADER} header (the csrf_token of /api/v1/auth/me)",
        )
    return users.principal_of(user, record.id)


def optional_principal(
    request: Request, session: SessionDep, settings: SettingsDep, credentials: CredentialsDep
) -> Principal | None:
    """The principal of a bearer admin token or of a login-session cookie; None if anonymous.

    A bearer value that is not a live admin token is refused (and counted against the
    caller's failure limit) rather than treated as anonymous. The last-use times that the
    check may have moved (session idle expiry, token last use) are committed here, since a
    read-only request commits nothing else.
    """
    if credentials is not None:
        principal: Principal | None = bearer_principal(request, session, settings, credentials)
    else:
        principal = cookie_principal(request, session, settings)
    if principal is not None:
        session.commit()
    return principal


OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def signed_in(principal: OptionalPrincipalDep) -> Principal:
    """Any signed-in principal (viewer or above), or 401."""
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "sign in first (session cookie) or send an admin token (Authorization: Bearer)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


ViewerDep = Annotated[Principal, Depends(signed_in)]


def role_required(role: Role) -> Callable[[Principal], Principal]:
    """A dependency: the signed-in principal when it has `role`, else 403."""

    def check(principal: ViewerDep) -> Principal:
        if not principal.has(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {role} role")
        return principal

    return check


EditorDep = Annotated[Principal, Depends(role_required("editor"))]
AdminDep = Annotated[Principal, Depends(role_required("admin"))]


def viewer_audience(principal: ViewerDep) -> Audience:
    """Planner reads: what the signed-in principal may see."""
    return principal.audience


DeviceDep = Annotated[Camera, Depends(device_camera)]
AudienceDep = Annotated[Audience, Depends(viewer_audience)]
