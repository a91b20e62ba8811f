"""REST plumbing every route shares: each request is recorded (``RecordedRequest``), answered the
way Discord answers (JSON, rate-limit headers), refused as Discord would when its body breaks a
rule (``rules.py``), and tests wait on the records."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from aiohttp import web

from . import rules

_log = logging.getLogger("fakediscord")


def _json_response(data: Any, status: int = 200) -> web.Response:
    # discord.py compares the header with == 'application/json': no charset.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **_ratelimit_headers()},
    )


def _empty_response(status: int = 204) -> web.Response:
    return web.Response(status=status, headers=_ratelimit_headers())


def _ratelimit_headers() -> Dict[str, str]:
    return {
        "X-RateLimit-Limit": "10000",
        "X-RateLimit-Remaining": "9999",
        "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
        "X-RateLimit-Reset-After": "1.000",
    }


class UploadedFile(NamedTuple):
    filename: str
    data: bytes
    content_type: str


@dataclass
class RecordedRequest:
    method: str
    path: str  # path without the /api/v10 prefix, e.g. "/users/@me"
    query: Dict[str, str]
    headers: Dict[str, str]
    json: Any = None  # JSON body, or the parsed payload_json of a multipart body
    files: List[UploadedFile] = field(default_factory=list)
    multipart: bool = False
    raw_body: bytes = b""
    status: Optional[int] = None
    route: Optional[str] = None  # handler name, None for unknown routes
    error: Any = None  # the error body when the server refused the request as Discord would (400/401/403)
    time: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:  # compact for assertion messages
        return f"<{self.method} {self.path} status={self.status} files={[f.filename for f in self.files]}>"


_REC: Any = web.RequestKey("fakediscord_rec", RecordedRequest) if hasattr(web, "RequestKey") else "fakediscord_rec"


class RestMixin:
    """Records every REST request, refuses bad ones like Discord, and waits for what tests expect."""

    async def _notify(self) -> None:
        if self._changed is None:
            return
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` (no arguments) returns something truthy;
        it is re-checked after every request and gateway frame."""
        assert self._changed is not None, "server not started"

        async def _wait():
            async with self._changed:
                while True:
                    result = predicate()
                    if result:
                        return result
                    # also poll: predicates may look at bot-side state too
                    try:
                        await asyncio.wait_for(self._changed.wait(), 0.05)
                    except asyncio.TimeoutError:
                        pass

        try:
            return await asyncio.wait_for(_wait(), timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"fakediscord.wait_for timed out after {timeout}s; last requests: {self.requests[-8:]!r}; "
                f"unknown routes: {self.unknown_routes!r}"
            ) from None

    async def wait_for_request(
        self, method: str, path_regex: str, timeout: float = 10.0, predicate: Optional[Callable[[RecordedRequest], bool]] = None
    ) -> RecordedRequest:
        def check():
            for req in self.requests_matching(method, path_regex):
                if req.status is not None and (predicate is None or predicate(req)):
                    return req
            return None

        return await self.wait_for(check, timeout)

    def requests_matching(self, method: Optional[str], path_regex: str) -> List[RecordedRequest]:
        rx = re.compile(path_regex)
        return [r for r in self.requests if (method is None or r.method == method.upper()) and rx.search(r.path)]

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path == "/gateway" or request.path.startswith("/attachments/"):
            return await handler(request)
        path = request.path
        if path.startswith(self.API_PREFIX):
            path = path[len(self.API_PREFIX):]
        rec = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            rec.multipart = True
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                body = await part.read(decode=False)  # type: ignore[union-attr]
                name = part.name  # type: ignore[union-attr]
                if name == "payload_json":
                    rec.json = json.loads(body.decode())
                elif part.filename:  # type: ignore[union-attr]
                    rec.files.append(
                        UploadedFile(
                            part.filename,  # type: ignore[union-attr]
                            bytes(body),
                            part.headers.get("Content-Type", "application/octet-stream"),  # type: ignore[union-attr]
                        )
                    )
        else:
            rec.raw_body = await request.read()
            if rec.raw_body:
                try:
                    rec.json = json.loads(rec.raw_body)
                except ValueError:
                    rec.json = None
        request[_REC] = rec
        self.requests.append(rec)
        if self.expected_token is not None and request.headers.get("Authorization") not in (
            None,
            f"Bot {self.expected_token}",
        ):
            rec.status = 401
            await self._notify()
            return _json_response({"message": "401: Unauthorized", "code": 0}, 401)
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            rec.status = exc.status
            await self._notify()
            raise
        except Exception:
            _log.exception("fakediscord handler crashed for %s %s", request.method, request.path)
            rec.status = 500
            await self._notify()
            # 400, not 500: discord.py retries 500s with sleeps, which hides bugs
            return _json_response({"message": "fakediscord internal error", "code": 0}, 400)
        rec.status = resp.status
        await self._notify()
        return resp

    async def _h_unknown(self, request: web.Request) -> web.Response:
        rec: Optional[RecordedRequest] = request.get(_REC)
        if rec is not None:
            self.unknown_routes.append(rec)
        _log.warning("fakediscord: unknown route %s %s", request.method, request.path)
        return _json_response({"message": "Unknown", "code": 0}, 404)

    def _refuse(self, request: web.Request, body: Dict[str, Any], status: int = 400) -> web.Response:
        """Answer as Discord does when it refuses a request, and remember it."""
        rec: RecordedRequest = request[_REC]
        rec.error = body
        if status == 400:
            self.rejected_requests.append(rec)
        _log.warning("fakediscord refused %s %s: %s", request.method, request.path, body)
        return _json_response(body, status)

    def _refuse_message(self, request: web.Request, body: Dict[str, Any], *, allowed_flags: int,
                        new: bool = True) -> Optional[web.Response]:
        """A 400 response when a message body breaks Discord's rules, else None."""
        problems = rules.message_problems(body, allowed_flags=allowed_flags, files=len(request[_REC].files), new=new)
        return self._refuse(request, rules.error_body(problems)) if problems else None
