"""Attachments: files the test registers or the bot uploads, their attachment objects, and the HTTP
route that serves their bytes (with injectable failures, delays and hangs)."""

from __future__ import annotations

import asyncio
import mimetypes
from typing import Any, Dict, List, Optional, Union

from aiohttp import web

from .rest import UploadedFile
from .state import snowflake


class _Attachment:
    def __init__(self, data: Dict[str, Any], content: bytes, status: int = 200, hang: bool = False, delay: float = 0.0,
                 gate: Optional[asyncio.Event] = None):
        self.data = data
        self.content = content
        self.status = status
        self.hang = hang
        self.delay = delay
        self.gate = gate


class AttachmentsMixin:
    """Registers and serves attachments; builds a message's attachment list from uploaded files."""

    def add_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: Optional[str] = None,
        *,
        status: int = 200,
        hang: bool = False,
        delay: float = 0.0,
        description: Optional[str] = None,
        size: Optional[int] = None,
        gate: Optional[asyncio.Event] = None,
    ) -> Dict[str, Any]:
        """Register a file served at ``{base_url}/attachments/{id}/{filename}`` and
        return a Discord attachment object for it. ``status`` != 200 makes the
        download fail with that status; ``hang=True`` never answers (until stop);
        ``delay`` sleeps before answering; ``gate`` holds the answer until the test
        sets that event; ``size`` overrides the advertised size."""
        att_id = snowflake()
        obj = self._attachment_obj(att_id, filename, data, content_type, description=description)
        if size is not None:
            obj["size"] = size
        self._attachments[att_id] = _Attachment(obj, data, status=status, hang=hang, delay=delay, gate=gate)
        return dict(obj)

    def _attachment_obj(
        self, att_id: int, filename: str, data: bytes, content_type: Optional[str], description: Optional[str] = None
    ) -> Dict[str, Any]:
        ct = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        url = f"{self.base_url}/attachments/{att_id}/{filename}"
        obj = {
            "id": str(att_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": ct,
        }
        if description is not None:
            obj["description"] = description
        return obj

    def attachment_bytes(self, attachment: Union[Dict[str, Any], int]) -> bytes:
        att_id = int(attachment["id"]) if isinstance(attachment, dict) else int(attachment)
        return self._attachments[att_id].content

    def _build_attachments(
        self, payload: Dict[str, Any], files: List[UploadedFile], existing: Optional[List[Dict[str, Any]]] = None
    ) -> Optional[List[Dict[str, Any]]]:
        """New attachment list, or None when the payload does not touch attachments."""
        existing_by_id = {str(a["id"]): a for a in (existing or [])}
        if "attachments" not in payload:
            if not files:
                return None
            refs = [{"id": i, "filename": f.filename} for i, f in enumerate(files)]
            keep: List[Dict[str, Any]] = list(existing or [])
        else:
            refs = payload.get("attachments") or []
            keep = []
        result = list(keep)
        for ref in refs:
            rid = str(ref.get("id"))
            if rid in existing_by_id and (not rid.isdigit() or int(rid) >= len(files) or len(rid) > 6):
                result.append(existing_by_id[rid])
                continue
            try:
                f = files[int(rid)]
            except (ValueError, IndexError):
                # reference to an attachment we do not know: keep it verbatim
                if rid in existing_by_id:
                    result.append(existing_by_id[rid])
                continue
            att_id = snowflake()
            obj = self._attachment_obj(att_id, ref.get("filename") or f.filename, f.data, None, ref.get("description"))
            self._attachments[att_id] = _Attachment(obj, f.data)
            result.append(obj)
        return result

    async def _h_attachment(self, request: web.Request) -> web.StreamResponse:
        try:
            att = self._attachments[int(request.match_info["attachment_id"])]
        except (KeyError, ValueError):
            return web.Response(status=404, text="not found")
        if att.hang:
            assert self._stopping is not None
            await self._stopping.wait()
            return web.Response(status=503)
        if att.delay:
            await asyncio.sleep(att.delay)
        if att.gate is not None:
            await att.gate.wait()
        if att.status != 200:
            return web.Response(status=att.status, text=f"fake error {att.status}")
        return web.Response(body=att.content, headers={"Content-Type": att.data.get("content_type") or "application/octet-stream"})
