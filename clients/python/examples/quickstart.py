#!/usr/bin/env python3
"""Pixora's flow with FacePass, end to end: create an event, upload its
photos, wait for indexing through WatchEvent, search with a guest's selfie,
delete the event. The tests run it (integration-tests/tests/python_client.rs).

    python clients/python/examples/quickstart.py --target 127.0.0.1:50051 \\
        --api-key fp_... --selfie selfie.jpg photos/*.jpg
"""

import argparse
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from facepass_client import Client, FacePassError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--api-key", default=os.environ.get("FACEPASS_API_KEY", ""))
    parser.add_argument("--selfie", required=True)
    parser.add_argument("--policy-version", default="2026-12-01",
                        help="the privacy policy version the guest agreed to")
    parser.add_argument("--keep", action="store_true", help="do not delete the event")
    parser.add_argument("--stream-above", type=int, default=4 << 20,
                        help="stream photos larger than this many bytes (UploadPhotoStream)")
    parser.add_argument("photos", nargs="+")
    args = parser.parse_args()

    with Client(args.target, args.api_key, timeout=60, stream_above=args.stream_above) as fp:
        external_id = f"quickstart-{uuid.uuid4().hex[:8]}"
        event = fp.create_event("Quickstart wedding", external_id=external_id)
        # A lost response is safe to retry: the same external_id is the same event.
        again = fp.create_event("Quickstart wedding", external_id=external_id)
        assert again.id == event.id
        print(f"event {event.id} (share link /e/{event.share_token})")

        for path in args.photos:
            with open(path, "rb") as f:
                photo = fp.upload_photo(event.id, f.read(),
                                        external_id=os.path.basename(path),
                                        file_name=os.path.basename(path))
            how = "streamed" if photo.size_bytes > args.stream_above else "uploaded"
            print(f"{how} {photo.file_name}: {photo.size_bytes} bytes")

        progress = fp.wait_indexed(event.id, timeout=300)
        print(f"indexed {progress.photos_indexed} of {progress.photos_total} photos, "
              f"{progress.photos_failed} failed, {progress.faces_total} faces")

        with open(args.selfie, "rb") as f:
            selfie = f.read()
        try:
            fp.search_by_selfie(event.id, [selfie], policy_version="")
        except FacePassError as e:
            print(f"without consent: {e.code} (field {e.field})")
        result = fp.search_by_selfie(event.id, [selfie], policy_version=args.policy_version)
        for m in result.matches:
            tier = "match" if m.tier == 1 else "possible"
            print(f"found {m.photo.file_name} ({tier}, similarity {m.similarity:.3f})")
        print(f"found {len(result.matches)} photos")

        if not args.keep:
            deleted = fp.delete_event(event.id)
            print(f"deleted the event: {deleted.photos_deleted} photos, "
                  f"{deleted.faces_deleted} faces")
            try:
                fp.get_event(event.id)
            except FacePassError as e:
                print(f"after deletion: {e.code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
