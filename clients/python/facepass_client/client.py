"""The wrapper: deadlines, retries of retryable codes, typed errors."""

from __future__ import annotations

import os
import random
import sys
import time
from typing import Callable, Iterable, Iterator, Optional

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

_GEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_gen")
if _GEN not in sys.path:
    # The generated modules import each other as `facepass.v1...`.
    sys.path.insert(0, _GEN)

from facepass.v1 import facepass_pb2 as pb  # noqa: E402
from facepass.v1 import facepass_pb2_grpc as pb_grpc  # noqa: E402

#: Codes for which sending the same request again can succeed.
RETRYABLE = frozenset({"UNAVAILABLE", "OVERLOADED", "TIMEOUT"})

#: Chunk size of streamed uploads.
CHUNK = 1 << 20
#: Photos up to this size go in one UploadPhoto call, larger ones are streamed.
UNARY_MAX = 4 << 20


class FacePassError(Exception):
    """A FacePass error: the stable `code` (docs/errors.md), the `message`,
    the request `field` at fault (or None), `details` (e.g. `existing_id` of
    ALREADY_EXISTS) and the `retry_delay` in seconds the server suggests."""

    def __init__(self, code: str, message: str, field: Optional[str] = None,
                 details: Optional[dict] = None, retry_delay: Optional[float] = None,
                 grpc_code: Optional[grpc.StatusCode] = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.details = details or {}
        self.retry_delay = retry_delay
        self.grpc_code = grpc_code

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "FacePassError":
        code = None
        field = None
        details: dict = {}
        delay = None
        trailing = dict(error.trailing_metadata() or ())
        code = trailing.get("x-facepass-error-code")
        status = rpc_status.from_call(error)
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                if info.domain == "facepass":
                    code = code or info.reason
                    details = dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                if bad.field_violations:
                    field = bad.field_violations[0].field or None
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
        grpc_code = error.code()
        if code is None:
            # Not from FacePass (a proxy, the transport): map the gRPC code.
            code = {
                grpc.StatusCode.UNAVAILABLE: "UNAVAILABLE",
                grpc.StatusCode.DEADLINE_EXCEEDED: "TIMEOUT",
                grpc.StatusCode.CANCELLED: "TIMEOUT",
                grpc.StatusCode.RESOURCE_EXHAUSTED: "OVERLOADED",
                grpc.StatusCode.UNAUTHENTICATED: "UNAUTHENTICATED",
                grpc.StatusCode.PERMISSION_DENIED: "PERMISSION_DENIED",
                grpc.StatusCode.NOT_FOUND: "NOT_FOUND",
                grpc.StatusCode.ALREADY_EXISTS: "ALREADY_EXISTS",
                grpc.StatusCode.INVALID_ARGUMENT: "INVALID_ARGUMENT",
            }.get(grpc_code, "INTERNAL")
        return cls(code, error.details() or "", field, details, delay, grpc_code)


def backoff(attempt: int, suggested: Optional[float], base: float = 0.2,
            cap: float = 10.0) -> float:
    """Seconds to wait before retry `attempt` (1-based): the server's
    suggestion when it gave one, else exponential with full jitter."""
    if suggested is not None and suggested > 0:
        return min(suggested, cap)
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))


class Client:
    """A studio's client of the gateway at `target` ("host:port")."""

    def __init__(self, target: str, api_key: str, *, timeout: float = 30.0,
                 retries: int = 4, secure: bool = False, stream_above: int = UNARY_MAX,
                 channel: Optional[grpc.Channel] = None,
                 sleep: Callable[[float], None] = time.sleep):
        options = [("grpc.max_send_message_length", 64 << 20),
                   ("grpc.max_receive_message_length", 64 << 20)]
        if channel is None:
            channel = (grpc.secure_channel(target, grpc.ssl_channel_credentials(), options)
                       if secure else grpc.insecure_channel(target, options))
        self._channel = channel
        self._stub = pb_grpc.FacePassServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self.timeout = timeout
        self.retries = retries
        self.stream_above = stream_above
        self._sleep = sleep

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the machinery ---------------------------------------------------------

    def call(self, method: str, request, *, idempotent: bool = True, timeout=None):
        """Calls `method` with a deadline; retries retryable failures when the
        call is safe to repeat; raises FacePassError."""
        rpc = getattr(self._stub, method)
        attempt = 0
        while True:
            attempt += 1
            try:
                return rpc(request, timeout=timeout or self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                error = FacePassError.from_rpc_error(e)
                if not (idempotent and error.retryable and attempt <= self.retries):
                    raise error from None
                self._sleep(backoff(attempt, error.retry_delay))

    # -- events ----------------------------------------------------------------

    def create_event(self, name: str, external_id: str = ""):
        """Creates an event; with an external_id, a retry returns the same event."""
        request = pb.CreateEventRequest(name=name, external_id=external_id)
        return self.call("CreateEvent", request, idempotent=bool(external_id)).event

    def get_event(self, event_id: str):
        return self.call("GetEvent", pb.GetEventRequest(event_id=event_id)).event

    def delete_event(self, event_id: str):
        return self.call("DeleteEvent", pb.DeleteEventRequest(event_id=event_id))

    def watch_event(self, event_id: str, timeout: Optional[float] = None) -> Iterator:
        """Progress and each photo's outcome as they happen (WatchEvent)."""
        try:
            for update in self._stub.WatchEvent(
                    pb.WatchEventRequest(event_id=event_id),
                    timeout=timeout, metadata=self._metadata):
                yield update
        except grpc.RpcError as e:
            raise FacePassError.from_rpc_error(e) from None

    def wait_indexed(self, event_id: str, timeout: float = 300.0):
        """Waits on WatchEvent until nothing is pending; returns the progress."""
        for update in self.watch_event(event_id, timeout=timeout):
            if update.HasField("progress") and update.progress.completed:
                return update.progress
        raise FacePassError("TIMEOUT", "the watch ended before indexing completed")

    # -- photos ----------------------------------------------------------------

    def upload_photo(self, event_id: str, content: bytes, external_id: str = "",
                     file_name: str = "", bulk: bool = False):
        """Uploads a photo (streamed when it is large). With an external_id a
        retry returns the same photo, so failures are retried. `bulk=True` for
        an archive sent photo by photo: it is indexed after photos uploaded
        live (IndexingPriority)."""
        idempotent = bool(external_id)
        priority = pb.INDEXING_PRIORITY_BULK if bulk else pb.INDEXING_PRIORITY_LIVE
        if len(content) <= self.stream_above:
            request = pb.UploadPhotoRequest(event_id=event_id, external_id=external_id,
                                            content=content, file_name=file_name,
                                            priority=priority)
            return self.call("UploadPhoto", request, idempotent=idempotent).photo
        return self._upload_stream(event_id, content, external_id, file_name, idempotent,
                                   priority)

    def _upload_stream(self, event_id, content, external_id, file_name, idempotent, priority):
        def messages() -> Iterable:
            yield pb.UploadPhotoStreamRequest(header=pb.UploadPhotoHeader(
                event_id=event_id, external_id=external_id, file_name=file_name,
                priority=priority))
            for at in range(0, len(content), CHUNK):
                yield pb.UploadPhotoStreamRequest(chunk=content[at:at + CHUNK])
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._stub.UploadPhotoStream(
                    messages(), timeout=self.timeout, metadata=self._metadata).photo
            except grpc.RpcError as e:
                error = FacePassError.from_rpc_error(e)
                if not (idempotent and error.retryable and attempt <= self.retries):
                    raise error from None
                self._sleep(backoff(attempt, error.retry_delay))

    def list_photos(self, event_id: str, status: int = 0, page_size: int = 500) -> Iterator:
        """Every photo of the event, page by page."""
        token = ""
        while True:
            page = self.call("ListPhotos", pb.ListPhotosRequest(
                event_id=event_id, status=status, page_size=page_size, page_token=token))
            yield from page.photos
            if not page.next_page_token:
                return
            token = page.next_page_token

    # -- searches --------------------------------------------------------------

    def search_by_selfie(self, event_id: str, selfies: list, *, policy_version: str,
                         match_only: bool = False, limit: int = 0):
        """Photos of the event with the selfies' person. `policy_version` is the
        privacy policy the guest agreed to (without consent: CONSENT_REQUIRED)."""
        if not selfies:
            raise ValueError("at least one selfie")
        request = pb.SearchBySelfieRequest(
            event_id=event_id, selfie=selfies[0], more_selfies=list(selfies[1:]),
            limit=limit,
            tiers=pb.TIERS_MATCH_ONLY if match_only else pb.TIERS_ALL,
            consent=pb.Consent(given=True, policy_version=policy_version))
        return self.call("SearchBySelfie", request)
