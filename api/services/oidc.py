"""Single sign-on through a city's OpenID Connect provider (Authorization Code + PKCE).

authlib does the protocol: discovery from `<issuer>/.well-known/openid-configuration`, the
authorization URL with state, nonce and an S256 code challenge, the code exchange, and the ID
token's validation (signature against the provider's JWKS, iss, aud, exp, nonce). What the
browser must bring back (state, nonce, code verifier) travels in a short-lived cookie signed
with the settings' secret, never in a URL. The account is found by `iss|sub`, else linked
by e-mail, else created; its role comes from a claim at every sign-in.
"""

from __future__ import annotations

import hmac
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc.errors import JoseError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import User
from api.schemas import Role
from api.services.access import ROLE_RANK, ROLES
from api.services.audit import Origin
from api.services.errors import DomainError
from api.services.users import principal_of
from api.settings import Settings

with warnings.catch_warnings():
    # authlib's async client runs on httpx (this project's HTTP client) and warns that it
    # would rather have the httpx2 fork; nothing for an operator to act on.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.starlette_client import OAuth

PENDING_COOKIE = "tally_oidc"
PENDING_MAX_AGE_S = 600
HTTP_TIMEOUT_S = 10.0
LEEWAY_S = 60
OAUTH_ERROR_CODES = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
    }
)
"""The error codes of RFC 6749 §4.1.2.1 and OpenID Connect Core §3.1.2.6: only these are
repeated to the user, so a crafted callback cannot put its own words on the login page."""
MAX_EMAIL, MAX_SUBJECT, MAX_NAME = 254, 255, 200
"""What the users table holds (email, oidc_subject, display_name)."""


class SignOnError(DomainError):
    """Single sign-on failed; the message is safe to show the person signing in."""


@dataclass(frozen=True, slots=True)
class Identity:
    """What a validated ID token says about the person."""

    subject: str
    """`iss|sub`: the provider account, stable across e-mail changes."""
    email: str
    email_verified: bool | None
    name: str
    role: Role


def role_from_claims(claims: dict[str, Any], settings: Settings) -> Role:
    """The highest known role named by the role claim (a string or a list), else the default."""
    value = claims.get(settings.oidc_role_claim)
    named = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    known = [role for role in ROLES if role in named]
    if known:
        return max(known, key=ROLE_RANK.__getitem__)
    if settings.oidc_default_role:
        return settings.oidc_default_role
    raise SignOnError(
        f"your identity provider gave no Tally role (claim {settings.oidc_role_claim!r} "
        "should be viewer, editor or admin); ask your administrator for access"
    )


class SingleSignOn:
    """The relying party for one configured provider (discovery and keys are cached)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client = OAuth().register(
            "tally",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret or None,
            server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": settings.oidc_scopes,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": (
                    "client_secret_basic" if settings.oidc_client_secret else "none"
                ),
                "timeout": HTTP_TIMEOUT_S,
            },
        )
        self.pending = URLSafeTimedSerializer(settings.secret_key, salt="tally-oidc-pending")

    async def start(self, redirect_uri: str) -> tuple[str, str]:
        """The provider's authorization URL and the signed pending-state cookie value."""
        try:
            await self.checked_metadata()
            started = await self.client.create_authorization_url(redirect_uri)
        except (httpx.HTTPError, OAuthError, ValueError, RuntimeError) as exc:
            raise SignOnError(f"the identity provider cannot be reached ({exc})") from exc
        pending = {key: started[key] for key in ("state", "nonce", "code_verifier")}
        return str(started["url"]), self.pending.dumps(pending)

    async def finish(
        self, redirect_uri: str, pending_cookie: str | None, params: dict[str, str]
    ) -> Identity:
        """Check the callback against the pending state, redeem the code, validate the ID token."""
        if "error" in params:
            code = params["error"] if params["error"] in OAUTH_ERROR_CODES else "unknown error"
            raise SignOnError(f"the identity provider refused: {code}")
        pending = self.read_pending(pending_cookie)
        if not hmac.compare_digest(pending["state"], params.get("state", "")):
            raise SignOnError("the sign-in answer does not belong to this browser; start again")
        try:
            await self.checked_metadata()
            token = await self.client.fetch_access_token(
                redirect_uri=redirect_uri,
                code=params.get("code", ""),
                code_verifier=pending["code_verifier"],
            )
            claims = await self.client.parse_id_token(
                token, nonce=pending["nonce"], claims_options=self.claims_options(), leeway=LEEWAY_S
            )
        except (httpx.HTTPError, OAuthError, JoseError, ValueError, KeyError) as exc:
            raise SignOnError(f"the identity provider's answer was not accepted ({exc})") from exc
        if claims is None:
            raise SignOnError("the identity provider sent no ID token")
        return self.identity(dict(claims))

    async def checked_metadata(self) -> dict[str, Any]:
        """Discovery, refusing a document that names another issuer (OIDC Discovery 4.3)."""
        metadata: dict[str, Any] = await self.client.load_server_metadata()
        if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
            raise SignOnError(f"the discovery document names issuer {metadata.get('issuer')!r}")
        return metadata

    def read_pending(self, cookie: str | None) -> dict[str, str]:
        try:
            pending: dict[str, str] = self.pending.loads(cookie or "", max_age=PENDING_MAX_AGE_S)
        except BadSignature as exc:
            raise SignOnError("the sign-in took too long or began elsewhere; start again") from exc
        return pending

    def claims_options(self) -> dict[str, dict[str, Any]]:
        """ID-token checks beyond the signature: issued by our issuer, for our client id."""
        return {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.settings.oidc_client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
        }

    def identity(self, claims: dict[str, Any]) -> Identity:
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email or len(email) > MAX_EMAIL:
            raise SignOnError("the identity provider sent no usable e-mail address")
        subject = f"{claims['iss']}|{claims['sub']}"
        if len(subject) > MAX_SUBJECT:
            raise SignOnError("the identity provider's account id is too long")
        name = claims.get("name")
        verified = claims.get("email_verified")
        return Identity(
            subject=subject,
            email=email.strip().lower(),
            email_verified=verified if isinstance(verified, bool) else None,
            name=(name if isinstance(name, str) and name.strip() else email)[:MAX_NAME],
            role=role_from_claims(claims, self.settings),
        )


def sign_in(session: Session, identity: Identity, client_ip: str) -> User:
    """The account for a provider identity: found by subject, linked by e-mail, or created.

    The role (and display name) follow the provider at every sign-in. A local account is
    linked only when the provider says it verified the e-mail address: otherwise anyone who
    may set their address at the provider could take over the local account of that address.
    """
    user = session.scalars(select(User).where(User.oidc_subject == identity.subject)).first()
    action = "user.sso_update"
    if user is None:
        user = session.scalars(select(User).where(User.email == identity.email)).first()
        if user is not None:
            if identity.email_verified is not True:
                raise SignOnError(f"your identity provider has not verified {identity.email}")
            if user.oidc_subject is not None:
                raise SignOnError(f"the account {identity.email} belongs to another sign-in")
            user.oidc_subject = identity.subject
            action = "user.sso_link"
    if user is None:
        user = User(
            email=identity.email,
            display_name=identity.name,
            role=identity.role,
            password_hash=None,
            oidc_subject=identity.subject,
            disabled=False,
            created_at=datetime.now(UTC),
        )
        session.add(user)
        action = "user.sso_create"
    if user.disabled:
        raise SignOnError("this account is disabled; ask your administrator")
    if identity.role == "admin" and user.sites:
        raise SignOnError(
            "an admin account cannot be restricted to sites; ask an admin to lift the restriction"
        )
    changes: dict[str, Any] = {"role": identity.role, "display_name": identity.name}
    if action == "user.sso_update":
        changes = {key: value for key, value in changes.items() if getattr(user, key) != value}
    user.role, user.display_name = identity.role, identity.name
    session.flush()
    if changes:
        Origin(principal_of(user), client_ip).record(session, action, user.email, changes)
    return user
