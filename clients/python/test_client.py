"""Unit tests of the wrapper's logic (no server): error parsing, retries."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
from google.protobuf import any_pb2, duration_pb2  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402

from facepass_client import Client, FacePassError  # noqa: E402
from facepass_client.client import backoff, pb  # noqa: E402


class FakeError(grpc.RpcError):
    """An RpcError as grpcio raises it, with FacePass's error details."""

    def __init__(self, grpc_code, code, message, field=None, metadata=None, delay=None):
        status = status_pb2.Status(code=grpc_code.value[0], message=message)
        info = error_details_pb2.ErrorInfo(reason=code, domain="facepass",
                                           metadata=metadata or {})
        for detail in [info] + ([error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field)])] if field else []) + (
                [error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
                    seconds=int(delay), nanos=int((delay % 1) * 1e9)))] if delay else []):
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        self._code, self._message = grpc_code, message
        self._trailing = (("x-facepass-error-code", code),
                          ("grpc-status-details-bin", status.SerializeToString()))

    def code(self):
        return self._code

    def details(self):
        return self._message

    def trailing_metadata(self):
        return self._trailing


class Flaky:
    """A stub method that fails `n` times, then answers."""

    def __init__(self, errors, answer):
        self.errors, self.answer, self.calls = list(errors), answer, 0

    def __call__(self, request, timeout=None, metadata=None):
        self.calls += 1
        assert timeout and metadata
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


class Stub:
    pass


def client_with(method, fake):
    c = Client("127.0.0.1:9", "fp_test", channel=grpc.insecure_channel("127.0.0.1:9"),
               sleep=lambda s: None)
    c._stub = Stub()
    setattr(c._stub, method, fake)
    return c


class ErrorTests(unittest.TestCase):
    def test_details_become_fields(self):
        e = FacePassError.from_rpc_error(FakeError(
            grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS", "photo p exists",
            field="external_id", metadata={"existing_id": "p"}))
        self.assertEqual((e.code, e.field, e.details["existing_id"]),
                         ("ALREADY_EXISTS", "external_id", "p"))
        self.assertFalse(e.retryable)
        e = FacePassError.from_rpc_error(FakeError(
            grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE", "down", delay=2.0))
        self.assertTrue(e.retryable)
        self.assertEqual(e.retry_delay, 2.0)

    def test_backoff(self):
        self.assertEqual(backoff(3, 2.0), 2.0)
        for attempt in range(1, 8):
            self.assertLessEqual(backoff(attempt, None), min(10.0, 0.2 * 2 ** (attempt - 1)))


class RetryTests(unittest.TestCase):
    def test_retryable_codes_are_retried_for_idempotent_calls(self):
        down = FakeError(grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE", "down", delay=1.0)
        fake = Flaky([down, down], pb.GetEventResponse(event=pb.Event(id="e")))
        self.assertEqual(client_with("GetEvent", fake).get_event("e").id, "e")
        self.assertEqual(fake.calls, 3)

    def test_a_create_without_external_id_is_not_retried(self):
        down = FakeError(grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE", "down")
        fake = Flaky([down], pb.CreateEventResponse())
        with self.assertRaises(FacePassError):
            client_with("CreateEvent", fake).create_event("x")
        self.assertEqual(fake.calls, 1)

    def test_permanent_codes_are_not_retried(self):
        bad = FakeError(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "bad", field="name")
        fake = Flaky([bad], pb.CreateEventResponse())
        with self.assertRaises(FacePassError) as raised:
            client_with("CreateEvent", fake).create_event("x", external_id="e1")
        self.assertEqual(raised.exception.field, "name")
        self.assertEqual(fake.calls, 1)

    def test_retries_stop(self):
        down = FakeError(grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE", "down")
        fake = Flaky([down] * 10, pb.GetEventResponse())
        with self.assertRaises(FacePassError):
            client_with("GetEvent", fake).get_event("e")
        self.assertEqual(fake.calls, 5)


class Recorder:
    """A stub method that keeps the requests it gets."""

    def __init__(self, answer):
        self.answer, self.requests = answer, []

    def __call__(self, request, timeout=None, metadata=None):
        self.requests.append(request)
        return self.answer


class PriorityTests(unittest.TestCase):
    def test_uploads_are_live_unless_bulk(self):
        fake = Recorder(pb.UploadPhotoResponse(photo=pb.Photo(id="p")))
        c = client_with("UploadPhoto", fake)
        c.upload_photo("e", b"jpeg")
        c.upload_photo("e", b"jpeg", bulk=True)
        self.assertEqual([r.priority for r in fake.requests],
                         [pb.INDEXING_PRIORITY_LIVE, pb.INDEXING_PRIORITY_BULK])

    def test_a_streamed_bulk_upload_says_so_in_its_header(self):
        fake = Recorder(pb.UploadPhotoStreamResponse(photo=pb.Photo(id="p")))
        c = client_with("UploadPhotoStream", fake)
        c.stream_above = 2
        sent = []
        original = fake.__call__

        def consume(messages, timeout=None, metadata=None):
            sent.extend(messages)
            return original(None, timeout, metadata)
        setattr(c._stub, "UploadPhotoStream", consume)
        c.upload_photo("e", b"a large photo", bulk=True)
        self.assertEqual(sent[0].header.priority, pb.INDEXING_PRIORITY_BULK)
        self.assertEqual(b"".join(m.chunk for m in sent[1:]), b"a large photo")


if __name__ == "__main__":
    unittest.main()
