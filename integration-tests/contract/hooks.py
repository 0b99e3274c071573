"""Schemathesis hooks for the REST contract test (integration-tests/tests/openapi.rs).

Generated requests reach real objects as well as random ones: path parameters and
the consent are drawn either as generated or from a seeded event (an indexed photo,
a face, the share link), so searches, downloads and listings run for real. Image
bodies are real photos and selfies, or random bytes.

The guest's event belongs to another studio than the API key's: no request made with
the key (the stateful phase follows links from listings to updates and deletions) can
turn its share link off.

Set by the test: FACEPASS_ST_IMAGES (paths joined by os.pathsep), FACEPASS_ST_EVENT_ID,
FACEPASS_ST_PHOTO_ID, FACEPASS_ST_FACE_ID (the key's studio), FACEPASS_ST_TOKEN,
FACEPASS_ST_GUEST_PHOTO_ID (the guest's event), FACEPASS_ST_CONSENT.
"""

import os

import schemathesis
from hypothesis import strategies as st

IMAGES = [open(p, "rb").read() for p in os.environ["FACEPASS_ST_IMAGES"].split(os.pathsep) if p]
schemathesis.openapi.media_type(
    "image/*", st.one_of(st.sampled_from(IMAGES), st.binary(max_size=4096))
)

STUDIO = {
    "event_id": os.environ["FACEPASS_ST_EVENT_ID"],
    "photo_id": os.environ["FACEPASS_ST_PHOTO_ID"],
    "face_id": os.environ["FACEPASS_ST_FACE_ID"],
}
GUEST = {
    "token": os.environ["FACEPASS_ST_TOKEN"],
    "photo_id": os.environ["FACEPASS_ST_GUEST_PHOTO_ID"],
}

# These change what the seeded event is (delete it, purge it, turn its link off,
# forget its faces): they only get generated ids, so the rest keep finding it.
KEEP_AWAY = {
    "delete_event",
    "delete_photo",
    "delete_face",
    "set_retention",
    "update_share_link",
    "rotate_share_link",
    "forget_guest",
    "guest_forget",
}


def _operation_id(context):
    op = context.operation
    return (op.definition.raw or {}).get("operationId", "") if op is not None else ""


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    operation = _operation_id(context)
    ids = GUEST if operation.startswith("guest_") else STUDIO
    known = {k: v for k, v in ids.items() if k in (path_parameters or {})}
    if not known or operation in KEEP_AWAY:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **known}])


# Selfie searches need the guest's consent to the privacy policy.
NEEDS_CONSENT = {"guest_search", "search_event"}


@schemathesis.hook
def flatmap_query(context, query):
    if _operation_id(context) not in NEEDS_CONSENT:
        return st.just(query)
    consent = {**(query or {}), "consent": os.environ["FACEPASS_ST_CONSENT"]}
    return st.sampled_from([query, consent])
