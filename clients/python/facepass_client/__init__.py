"""A small Python client for FacePass's public gRPC API (facepass.v1).

    from facepass_client import Client, FacePassError

    with Client("127.0.0.1:50051", api_key="fp_...") as fp:
        event = fp.create_event("Wedding", external_id="pixora-42")
        fp.upload_photo(event.id, open("IMG_0001.jpg", "rb").read(), external_id="IMG_0001")
        for update in fp.watch_event(event.id):
            ...

Every call has a deadline; calls that are safe to repeat are retried on the
codes worth retrying (UNAVAILABLE, OVERLOADED, TIMEOUT), waiting as the
server's google.rpc.RetryInfo says; failures raise FacePassError with the
stable code, message, field and details read from the error (docs/errors.md).
The generated stubs are in facepass_client._gen (clients/python/generate.sh).
"""

from .client import Client, FacePassError, RETRYABLE

__all__ = ["Client", "FacePassError", "RETRYABLE"]
