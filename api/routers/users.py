"""Account management (admins): list, create, change and delete planner accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from api.deps import AdminDep, SessionDep
from api.routers.admin import ADMIN_ERRORS, MAX_ROW_ID, origin
from api.schemas import UserCreated, UserIn, UserList, UserOut, UserPatch
from api.services import accounts, users
from api.strict_json import StrictJsonRoute

router = APIRouter(prefix="/api/v1/admin/users", tags=["admin"], route_class=StrictJsonRoute)
UserId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, title="Account id")]


@router.get(
    "",
    operation_id="admin_list_users",
    summary="List planner accounts",
    response_model=UserList,
    responses=ADMIN_ERRORS,
)
def list_users(_admin: AdminDep, session: SessionDep) -> UserList:
    """By e-mail; nothing secret (no password hashes, no SSO subject)."""
    return UserList(users=[accounts.describe(u) for u in users.list_users(session)])


@router.post(
    "",
    operation_id="admin_create_user",
    summary="Create a planner account with a generated password",
    status_code=status.HTTP_201_CREATED,
    response_model=UserCreated,
    responses=ADMIN_ERRORS,
)
def create_user(
    spec: UserIn, admin: AdminDep, request: Request, session: SessionDep
) -> UserCreated:
    """The password is in this response only; 409 when the e-mail has an account."""
    user, password = accounts.create_user(session, spec, origin(admin, request))
    session.commit()
    return UserCreated(user=accounts.describe(user), password=password)


@router.patch(
    "/{user_id}",
    operation_id="admin_update_user",
    summary="Change an account's name, role, site restriction or disabled flag",
    response_model=UserOut,
    responses=ADMIN_ERRORS,
)
def update_user(
    user_id: UserId, patch: UserPatch, admin: AdminDep, request: Request, session: SessionDep
) -> UserOut:
    """A new role, restriction or disabling ends the account's sessions; 422 for your own
    demotion or disabling."""
    user = accounts.update_user(session, user_id, patch, origin(admin, request))
    session.commit()
    return accounts.describe(user)


@router.delete(
    "/{user_id}",
    operation_id="admin_delete_user",
    summary="Delete an account",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ADMIN_ERRORS,
)
def delete_user(user_id: UserId, admin: AdminDep, request: Request, session: SessionDep) -> None:
    """Its sessions end with it; the audit log keeps its e-mail. 422 for your own account."""
    accounts.delete_user(session, user_id, origin(admin, request))
    session.commit()
