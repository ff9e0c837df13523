"""Sign-in: password login, login sessions, password change and single sign-on.

The session cookie is HttpOnly, SameSite=Strict and Secure on https; the CSRF token that
cookie-authenticated changes must send back is in `Me`. Failed passwords are limited per
account and per client IP; an unknown e-mail and a wrong password get the same answer after
the same work.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import (
    OptionalPrincipalDep,
    SessionDep,
    SettingsDep,
    ViewerDep,
    client_ip,
    too_many_requests,
)
from api.limiting import RateLimits
from api.models import LoginSession, User
from api.routers.errors import error_responses
from api.schemas import ApiModel, Email, Role
from api.services import login, oidc, users
from api.services.access import Principal
from api.services.audit import Origin
from api.settings import Settings
from api.strict_json import StrictJsonRoute

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=StrictJsonRoute)
WRONG_LOGIN = "wrong e-mail or password"
PENDING_PATH = "/api/v1/auth/oidc"
Password = Annotated[str, Field(min_length=1, max_length=users.MAX_PASSWORD_LENGTH)]


class LoginIn(ApiModel):
    """E-mail and password of a local account."""

    email: Email
    password: Password = Field(title="Password")


class PasswordChangeIn(ApiModel):
    """The current password (proof it is the account's owner) and the new one."""

    current_password: Password = Field(title="Current password")
    new_password: Password = Field(
        title=f"New password (at least {users.MIN_PASSWORD_LENGTH} characters, not the e-mail)"
    )


class Me(BaseModel):
    """Who the caller is signed in as."""

    email: str = Field(title="Account e-mail (token:<id> for an admin token)")
    display_name: str = Field(title="Name shown to people")
    role: Role = Field(title="Role")
    site_ids: list[str] | None = Field(title="Sites the account is restricted to (null: all)")
    csrf_token: str | None = Field(
        title="Send as X-CSRF-Token with every cookie-authenticated change (null for tokens)"
    )
    via: Literal["session", "token"] = Field(title="Login session cookie or bearer token")


class SsoOut(BaseModel):
    """The single sign-on button."""

    label: str = Field(title="Button text")
    login_url: str = Field(title="Where the button leads")


class AuthConfig(BaseModel):
    """The ways to sign in."""

    password_login: bool = Field(title="E-mail and password")
    sso: SsoOut | None = Field(title="Single sign-on (null: not configured)")


def me_of(principal: Principal, csrf_token: str | None) -> Me:
    return Me(
        email=principal.actor,
        display_name=principal.display_name,
        role=principal.role,
        site_ids=sorted(principal.site_ids) if principal.site_ids is not None else None,
        csrf_token=csrf_token,
        via="session" if principal.session_id is not None else "token",
    )


def cookies_secure(request: Request) -> bool:
    """Secure over HTTPS, and always in production: behind a TLS proxy the API may see plain
    HTTP, and a session cookie must never travel unencrypted there."""
    settings: Settings = request.app.state.settings
    return request.url.scheme == "https" or settings.environment == "production"


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        login.SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        path="/",
        secure=cookies_secure(request),
    )


def clear_cookie(response: Response, request: Request, name: str, path: str = "/") -> None:
    response.delete_cookie(
        name, path=path, httponly=True, samesite="strict", secure=cookies_secure(request)
    )


def rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def single_sign_on(request: Request) -> oidc.SingleSignOn:
    """The app's relying party (made on first use), or 404 when SSO is not configured."""
    settings: Settings = request.app.state.settings
    if not (settings.oidc_issuer and settings.oidc_client_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "single sign-on is not configured")
    sso: oidc.SingleSignOn | None = getattr(request.app.state, "sso", None)
    if sso is None:
        sso = request.app.state.sso = oidc.SingleSignOn(settings)
    return sso


def refuse_while_limited(limits: RateLimits, email: str, address: str) -> None:
    """429 (Retry-After) while the account or the address has failed too often."""
    wait = limits.login_retry_after_s(email, address)
    if wait is not None:
        raise too_many_requests(wait)


def open_session(
    request: Request,
    response: Response,
    session: Session,
    settings: Settings,
    user: User,
    address: str,
) -> Me:
    """A new login session for `user`, committed; its cookie set on `response`."""
    started = login.start_session(session, settings, user, address)
    session.commit()
    set_session_cookie(response, request, started.cookie)
    return me_of(users.principal_of(user, started.record.id), started.record.csrf_token)


LimitsDep = Annotated[RateLimits, Depends(rate_limits)]
SsoDep = Annotated[oidc.SingleSignOn, Depends(single_sign_on)]


@router.get(
    "/config",
    operation_id="auth_config",
    summary="The ways to sign in",
    response_model=AuthConfig,
)
def auth_config(settings: SettingsDep) -> AuthConfig:
    """Anonymous: the login page asks it which buttons to show."""
    sso = (
        SsoOut(label=settings.oidc_button_label, login_url=f"{PENDING_PATH}/login")
        if settings.oidc_issuer and settings.oidc_client_id
        else None
    )
    return AuthConfig(password_login=True, sso=sso)


@router.post(
    "/login",
    operation_id="auth_login",
    summary="Sign in with e-mail and password",
    response_model=Me,
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
def password_login(
    body: LoginIn,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
) -> Me:
    """Sets the `tally_session` cookie. 401 for an unknown e-mail or a wrong password alike;
    429 (Retry-After) after too many failures for the account or from the address; 403 for
    a disabled account (told only to someone who knows its password)."""
    address = client_ip(request)
    refuse_while_limited(limits, body.email, address)
    user = users.find_user(session, body.email)
    correct = login.verify_password(user, body.password)
    if user is None or not correct:
        limits.count_login_failure(body.email, address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG_LOGIN)
    if user.disabled:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this account is disabled")
    return open_session(request, response, session, settings, user, address)


@router.post(
    "/logout",
    operation_id="auth_logout",
    summary="Sign out: end the login session",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403, 503),
)
def logout(request: Request, principal: OptionalPrincipalDep, session: SessionDep) -> Response:
    """The session ends on the server (a copied cookie is useless too); the cookie is cleared."""
    if principal is not None and principal.session_id is not None:
        login.revoke_session(session, principal.session_id)
        session.commit()
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_cookie(response, request, login.SESSION_COOKIE)
    return response


@router.get(
    "/me",
    operation_id="auth_me",
    summary="Who is signed in",
    response_model=Me,
    responses=error_responses(401, 503),
)
def me(principal: ViewerDep, session: SessionDep) -> Me:
    """The account (or admin token) and, for a session, its CSRF token."""
    record = session.get(LoginSession, principal.session_id) if principal.session_id else None
    return me_of(principal, record.csrf_token if record is not None else None)


@router.post(
    "/password",
    operation_id="auth_change_password",
    summary="Change your password",
    response_model=Me,
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
def change_password(
    body: PasswordChangeIn,
    request: Request,
    response: Response,
    principal: ViewerDep,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
) -> Me:
    """Ends every session of the account and sets a fresh one (new cookie, new CSRF token).
    403 for a wrong current password (counted like a failed login) or an admin token."""
    user = session.get(User, principal.user_id) if principal.session_id else None
    if user is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "sign in with a password to change it")
    if user.password_hash is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "this account signs in through single sign-on; change the password there",
        )
    address = client_ip(request)
    refuse_while_limited(limits, user.email, address)
    if not login.verify_password(user, body.current_password):
        limits.count_login_failure(user.email, address)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong")
    users.set_password(session, user, body.new_password, Origin(principal, address))
    return open_session(request, response, session, settings, user, address)


def login_error(request: Request, message: str) -> RedirectResponse:
    """Back to the dashboard, which shows the message on its login page."""
    response = RedirectResponse(f"/?login_error={quote(message)}", status.HTTP_302_FOUND)
    clear_cookie(response, request, oidc.PENDING_COOKIE, PENDING_PATH)
    return response


@router.get(
    "/oidc/login",
    operation_id="auth_oidc_login",
    summary="Single sign-on: go to the identity provider",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses=error_responses(404),
)
async def oidc_login(request: Request, sso: SsoDep) -> RedirectResponse:
    """302 to the provider (Authorization Code + PKCE); 404 when SSO is not configured."""
    try:
        url, pending = await sso.start(str(request.url_for("oidc_callback")))
    except oidc.SignOnError as exc:
        return login_error(request, str(exc))
    response = RedirectResponse(url, status.HTTP_302_FOUND)
    response.set_cookie(
        oidc.PENDING_COOKIE,
        pending,
        max_age=oidc.PENDING_MAX_AGE_S,
        httponly=True,
        samesite="lax",  # the provider's redirect back is a cross-site navigation
        path=PENDING_PATH,
        secure=cookies_secure(request),
    )
    return response


@router.get(
    "/oidc/callback",
    operation_id="auth_oidc_callback",
    summary="Single sign-on: the identity provider's answer",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses=error_responses(404),
)
async def oidc_callback(
    request: Request, sso: SsoDep, session: SessionDep, settings: SettingsDep
) -> RedirectResponse:
    """302 to `/` signed in, or to `/?login_error=...` saying why not."""
    address = client_ip(request)
    try:
        identity = await sso.finish(
            str(request.url_for("oidc_callback")),
            request.cookies.get(oidc.PENDING_COOKIE),
            dict(request.query_params),
        )
        cookie = await run_in_threadpool(open_sso_session, session, settings, identity, address)
    except oidc.SignOnError as exc:
        return login_error(request, str(exc))
    response = RedirectResponse("/", status.HTTP_302_FOUND)
    clear_cookie(response, request, oidc.PENDING_COOKIE, PENDING_PATH)
    set_session_cookie(response, request, cookie)
    return response


def open_sso_session(
    session: Session, settings: Settings, identity: oidc.Identity, address: str
) -> str:
    """The account for the identity and a new session for it, committed; the cookie value."""
    user = oidc.sign_in(session, identity, address)
    started = login.start_session(session, settings, user, address)
    session.commit()
    return started.cookie
