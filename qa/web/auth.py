"""API keys: with QA_API_KEY set, writes need `Authorization: Bearer <key>`; reads too with QA_API_KEY_READS=true."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="Needed for writes when QA_API_KEY is set, and for reads too when QA_API_KEY_READS=true.",
)


def _check(request: Request, credentials: HTTPAuthorizationCredentials | None, *, write: bool) -> None:
    settings = request.app.state.settings
    if not settings.api_key or (not write and not settings.api_key_reads):
        return
    what = "changing the index" if write else "this endpoint"
    if credentials is None or not credentials.credentials.strip():
        raise HTTPException(
            401, f"{what} needs an API key: send the header 'Authorization: Bearer <QA_API_KEY>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = credentials.credentials.strip().encode("utf-8")
    if not hmac.compare_digest(given, settings.api_key.encode("utf-8")):
        raise HTTPException(401, "the API key is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


# async: they do no I/O, and a plain def would make FastAPI hop to its thread pool for every request.
async def require_read(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    _check(request, credentials, write=False)


async def require_write(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    _check(request, credentials, write=True)
