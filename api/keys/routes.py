"""`/v1/keys`: API keys managed by operators and admins: list (never a key itself), make
one (the key is in that answer only), revoke one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api import keys
from api.dependencies import Conn, Limit, Operator
from api.problems import ERROR_RESPONSES
from schemas.api_keys import LAST_USED_PRECISION_S, MAX_EXPIRY, Role
from schemas.registry import DeviceId, Slug

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=ERROR_RESPONSES)

PRECISION_MIN = LAST_USED_PRECISION_S // 60
_EXAMPLE: dict[str, Any] = {
    "id": "0b7f5c3e-8f1a-4c2b-9d6e-3a1f2b4c5d6e",
    "name": "fjord portal 2026-12",
    "role": "brand",
    "brand": "fjord",
    "device_id": None,
    "created_at": "2026-12-01T09:30:00Z",
    "expires_at": "2027-03-01T09:30:00Z",
    "last_used_at": "2026-12-05T14:05:00Z",
    "revoked_at": None,
    "state": "active",
}


class Key(BaseModel):
    """What is kept of an API key: never the key itself, nor its hash."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    id: uuid.UUID
    name: str
    role: Role
    brand: str | None = Field(default=None, description="the brand a brand key is bound to")
    device_id: str | None = Field(default=None, description="the device a device key posts as")
    created_at: datetime
    expires_at: datetime | None = Field(
        default=None, description="refused from then on, like a revoked key (null: never expires)"
    )
    last_used_at: datetime | None = Field(
        default=None,
        description=f"when the key was last used (a request with it, a login to the"
        f" pages or a page viewed after it), to within {PRECISION_MIN} minutes: a use is"
        f" written at most once per key every {PRECISION_MIN} minutes, and not by an API"
        " serving from a read replica"
        " (null: no use recorded)",
    )
    revoked_at: datetime | None = None
    state: Literal["active", "expired", "revoked"] = Field(
        description="active, or why the key is refused (401)"
    )


class KeyPage(BaseModel):
    """One page of keys, newest first; `next` is the `after` of the following page."""

    items: list[Key]
    next: str | None = None


class NewKey(BaseModel):
    """A key to make: its role and what a brand or device key is bound to."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"role": "brand", "name": "fjord portal 2026-12", "brand": "fjord",
                 "expires": "90d"},
                {"role": "device", "name": "rvm-oslo-7 posts", "device_id": "rvm-oslo-7"},
            ]
        },
    )  # fmt: skip

    role: Role = Field(description="admin keys only by an admin key")
    name: str = Field(min_length=1, max_length=200, description="what the key is for")
    brand: Slug | None = Field(
        default=None, description="role brand: a brand with a registered product"
    )
    device_id: DeviceId | None = Field(default=None, description="role device: a device")
    expires: str | None = Field(
        default=None,
        max_length=40,
        description="when the key stops working, as `looptrack keys create --expires`: "
        "hours or days from now (12h, 90d), a date (2027-03-01: from 00:00 UTC) or a "
        f"date-time with its offset; at most {MAX_EXPIRY.days} days ahead. Omitted: never.",
    )


class CreatedKey(Key):
    """A new key's record and the key itself, which no later answer shows again."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_EXAMPLE, "key": "lt_" + "x" * 43}]}
    )

    key: str = Field(description="the key: send it as Authorization: Bearer; shown only now")


class RevokedKey(Key):
    """A revoked key's record."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_EXAMPLE,
                    "revoked_at": "2026-12-06T08:00:00Z",
                    "state": "revoked",
                    "revoked_now": True,
                    "own_key": False,
                }
            ]
        }
    )

    revoked_now: bool = Field(description="false when the key was revoked already")
    own_key: bool = Field(
        description="the key of this very request: this was the last answer it gets"
    )


@router.get("", response_model=KeyPage)
def list_keys(
    conn: Conn,
    _: Operator,
    after: Annotated[uuid.UUID | None, Query(description="`next` of the previous page")] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Keys newest first, revoked and expired ones included (operator, admin)."""
    return keys.keys_page(conn, after, limit)


@router.get("/{key_id}", response_model=Key)
def get_key(key_id: uuid.UUID, conn: Conn, _: Operator) -> dict[str, Any]:
    """One key (operator, admin)."""
    return keys.one_key(conn, key_id)


@router.post(
    "",
    response_model=CreatedKey,
    status_code=201,
    responses={201: {"description": "Created; the key is in this answer only"}},
)
def create_key(body: NewKey, conn: Conn, caller: Operator, response: Response) -> dict[str, Any]:
    """Make a key (operator, admin; an admin key only by an admin). A brand key needs a
    brand with a registered product, a device key a registered device (422 otherwise),
    as `looptrack keys create` does."""
    created = keys.create(
        conn,
        caller,
        body.role,
        body.name,
        brand=body.brand,
        device_id=body.device_id,
        expires=body.expires,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"/v1/keys/{created['id']}"
    return created


@router.post("/{key_id}/revoke", response_model=RevokedKey)
def revoke_key(key_id: uuid.UUID, conn: Conn, caller: Operator) -> dict[str, Any]:
    """Revoke a key for good (operator, admin; an admin key only by an admin): every
    request with it gets 401 from now on, and its pages' sessions end. Revoking again
    changes nothing. The key of this request may revoke itself: this answer is its last."""
    return keys.revoke(conn, caller, key_id)
