#!/usr/bin/env python3
"""Checks FacePass's gRPC error contract as a Python grpcio client sees it.

Makes calls to the gateway's public API (facepass.v1.FacePassService) that
must fail, and reads each failure the way docs/errors.md tells clients to:
`grpc_status.rpc_status.from_call(error)` gives the `google.rpc.Status`
from `grpc-status-details-bin`, whose details hold a `google.rpc.ErrorInfo`
(reason = the stable FacePass code, domain "facepass"), a
`google.rpc.BadRequest` naming the field at fault, and a `google.rpc.RetryInfo`
for the codes worth retrying.

No generated stubs are needed: the requests are a few string fields, encoded
by hand, sent with a generic unary call.

    python tools/grpc_client/check_errors.py --target 127.0.0.1:50051 --api-key fp_...
    # optionally, an event whose deletion must fail as UNAVAILABLE (search down):
    python tools/grpc_client/check_errors.py ... --unavailable-event-id <uuid>

Prints one line per check and exits non-zero if any check fails.
"""

import argparse
import sys
import uuid

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

SERVICE = "/facepass.v1.FacePassService/"
DOMAIN = "facepass"
ERROR_CODE_HEADER = "x-facepass-error-code"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string_field(number: int, value: str) -> bytes:
    """A protobuf `string` field (wire type 2)."""
    data = value.encode("utf-8")
    return varint((number << 3) | 2) + varint(len(data)) + data


def create_event(name: str, external_id: str = "") -> bytes:
    # facepass.v1.CreateEventRequest { string name = 1; string external_id = 2; }
    request = string_field(1, name)
    if external_id:
        request += string_field(2, external_id)
    return request


def event_request(event_id: str) -> bytes:
    # GetEventRequest / DeleteEventRequest { string event_id = 1; }
    return string_field(1, event_id)


class Failure:
    """What a failed call carried: code, message, header and rich details."""

    def __init__(self, error: grpc.RpcError):
        self.code = error.code()
        self.message = error.details()
        trailing = dict(error.trailing_metadata() or ())
        self.header = trailing.get(ERROR_CODE_HEADER)
        self.problem = None
        try:
            self.status = rpc_status.from_call(error)
        except ValueError as why:  # the details disagree with the call's code or message
            self.status = None
            self.problem = str(why)
        self.info = None
        self.bad_request = None
        self.retry = None
        for detail in self.status.details if self.status else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                self.info = error_details_pb2.ErrorInfo()
                detail.Unpack(self.info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                self.bad_request = error_details_pb2.BadRequest()
                detail.Unpack(self.bad_request)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                self.retry = error_details_pb2.RetryInfo()
                detail.Unpack(self.retry)

    def fields(self):
        if self.bad_request is None:
            return []
        return [v.field for v in self.bad_request.field_violations]


class Checker:
    def __init__(self, channel: grpc.Channel, api_key: str, timeout: float):
        self.channel = channel
        self.api_key = api_key
        self.timeout = timeout
        self.passed = 0
        self.failed = 0

    def call(self, method: str, request: bytes, auth: bool = True):
        """The raw response bytes, or the Failure."""
        # No serializers: grpcio sends and returns the bytes as they are.
        rpc = self.channel.unary_unary(SERVICE + method)
        metadata = [("authorization", f"Bearer {self.api_key}")] if auth else []
        try:
            return rpc(request, metadata=metadata, timeout=self.timeout)
        except grpc.RpcError as error:
            return Failure(error)

    def report(self, name: str, problems):
        if problems:
            self.failed += 1
            print(f"FAIL {name}: " + "; ".join(problems))
        else:
            self.passed += 1
            print(f"ok   {name}")

    def expect_error(self, name, method, request, *, grpc_code, reason,
                     field=None, retry=False, message_has=None, auth=True):
        outcome = self.call(method, request, auth=auth)
        if not isinstance(outcome, Failure):
            self.report(name, [f"the call succeeded; expected {reason}"])
            return
        problems = []
        f = outcome
        if f.code != grpc_code:
            problems.append(f"gRPC code {f.code.name}, expected {grpc_code.name}")
        if f.header != reason:
            problems.append(f"{ERROR_CODE_HEADER} is {f.header!r}, expected {reason!r}")
        if f.problem:
            problems.append(f"rpc_status.from_call refused the details: {f.problem}")
        elif f.status is None:
            problems.append("no grpc-status-details-bin (rpc_status.from_call gave None)")
        if f.info is None:
            problems.append("no google.rpc.ErrorInfo in the details")
        else:
            if f.info.reason != reason:
                problems.append(f"ErrorInfo.reason {f.info.reason!r}, expected {reason!r}")
            if f.info.domain != DOMAIN:
                problems.append(f"ErrorInfo.domain {f.info.domain!r}, expected {DOMAIN!r}")
        if field is None:
            if f.bad_request is not None:
                problems.append(f"unexpected BadRequest on fields {f.fields()}")
        elif f.fields() != [field]:
            problems.append(f"BadRequest fields {f.fields()}, expected [{field!r}]")
        if retry:
            if f.retry is None:
                problems.append("no google.rpc.RetryInfo for a retryable code")
            elif f.retry.retry_delay.seconds <= 0 and f.retry.retry_delay.nanos <= 0:
                problems.append("RetryInfo.retry_delay is not positive")
        elif f.retry is not None:
            problems.append("RetryInfo on a code that retrying does not fix")
        if message_has and message_has not in (f.message or ""):
            problems.append(f"message {f.message!r} does not mention {message_has!r}")
        self.report(f"{name}: {f.code.name} {f.header} {f.message!r}", problems)

    def expect_ok(self, name, method, request):
        outcome = self.call(method, request)
        if isinstance(outcome, Failure):
            self.report(name, [f"failed with {outcome.code.name} {outcome.header}: {outcome.message!r}"])
        else:
            self.report(name, [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="gateway gRPC address, host:port")
    parser.add_argument("--api-key", required=True, help="a studio's API key")
    parser.add_argument("--unavailable-event-id",
                        help="an event whose DeleteEvent must fail as UNAVAILABLE (search down)")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    with grpc.insecure_channel(args.target) as channel:
        check = Checker(channel, args.api_key, args.timeout)
        check.expect_error("missing api key", "CreateEvent", create_event("Wedding"),
                           grpc_code=grpc.StatusCode.UNAUTHENTICATED,
                           reason="UNAUTHENTICATED", auth=False)
        check.expect_error("bad event id", "GetEvent", event_request("not-an-id"),
                           grpc_code=invalid, reason="INVALID_ARGUMENT", field="event_id")
        check.expect_error("unknown event", "GetEvent", event_request(str(uuid.uuid4())),
                           grpc_code=grpc.StatusCode.NOT_FOUND, reason="NOT_FOUND")
        check.expect_error("NUL in a name", "CreateEvent", create_event("a\0b"),
                           grpc_code=invalid, reason="INVALID_ARGUMENT", field="name")
        check.expect_error("NUL in an external_id", "CreateEvent",
                           create_event("Prom", external_id="x\0y"),
                           grpc_code=invalid, reason="INVALID_ARGUMENT", field="external_id")
        check.expect_error("201-character name", "CreateEvent", create_event("ж" * 201),
                           grpc_code=invalid, reason="INVALID_ARGUMENT", field="name",
                           message_has="201 characters")
        check.expect_ok("120-character Russian name", "CreateEvent",
                        create_event(("Выпускной вечер " * 8)[:120]))
        if args.unavailable_event_id:
            check.expect_error("search down", "DeleteEvent",
                               event_request(args.unavailable_event_id),
                               grpc_code=grpc.StatusCode.UNAVAILABLE, reason="UNAVAILABLE",
                               retry=True)
    print(f"check_errors: {check.passed} passed, {check.failed} failed")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
