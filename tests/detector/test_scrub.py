"""scrub_credentials: no password, token or key of a stream URL reaches a log line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector.source import scrub_credentials

SECRET_KEYS = [
    "user",
    "username",
    "password",
    "passwd",
    "pass",
    "pwd",
    "pw",
    "token",
    "authtoken",
    "auth",
    "key",
    "apikey",
    "api_key",
    "api-key",
    "access_token",
    "client_secret",
    "secret",
    "credentials",
    "signature",
    "sig",
    "session",
    "sessionid",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "stream_key",
]


@pytest.mark.parametrize(
    ("raw", "scrubbed"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1"),
        ("http://user:secret@127.0.0.1:8080/stream", "http://***@127.0.0.1:8080/stream"),
        ("rtsp://admin:p@ss@cam.local/live", "rtsp://***@cam.local/live"),
        ("rtsp://onlyuser@cam.local/live", "rtsp://***@cam.local/live"),
        ("RTSPS://a:b@cam/x?channel=1", "RTSPS://***@cam/x?channel=1"),
        # a space or a slash in the password (both used to leak)
        ("rtsp://user:pa ss@cam.local/live", "rtsp://***@cam.local/live"),
        ("rtsp://user:pa/ss@cam.local/live", "rtsp://***@cam.local/live"),
        ("rtsp://user:a/b c@d@cam.local:554/x", "rtsp://***@cam.local:554/x"),
        (
            "http://cam/video.cgi?user=admin&password=hunter2",
            "http://cam/video.cgi?user=***&password=***",
        ),
        ("http://cam/mjpg?token=abc123#frag", "http://cam/mjpg?token=***#frag"),
        # keys that used to leak
        ("http://cam/live?pw=hunter2&channel=1", "http://cam/live?pw=***&channel=1"),
        ("http://cam/live?authtoken=abc", "http://cam/live?authtoken=***"),
        ("http://cam/live?credentials=admin:hunter2", "http://cam/live?credentials=***"),
        ("http://cam/live?PassWord=x;Sig=y", "http://cam/live?PassWord=***;Sig=***"),
        (
            "https://bucket/clip.mp4?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=f00d&v=1",
            "https://bucket/clip.mp4?X-Amz-Credential=***&X-Amz-Signature=***&v=1",
        ),
        ("rtmp://live/app?stream_key=k3y", "rtmp://live/app?stream_key=***"),
        # free text, as in an exception message
        ("open failed: password=hunter2 (retrying)", "open failed: password=*** (retrying)"),
        ("opening rtsp://u:p@h/s failed", "opening rtsp://***@h/s failed"),
        ("rtsp://a:b@h1/x and rtsp://c:d@h2/y", "rtsp://***@h2/y"),
        (
            "rtsp://u:p@h/s failed\nrtsp://v:q@g/t failed",
            "rtsp://***@h/s failed\nrtsp://***@g/t failed",
        ),
        # a value that looks like the other kind is hidden whole
        ("http://cam/x?token=ab@cd&s=2", "http://***&s=2"),
        ("rtsp://user:x&pw=y@cam/live", "rtsp://***"),
        # nothing secret: unchanged
        ("rtsp://cam.local/live", "rtsp://cam.local/live"),
        ("http://cam/x?channel=1&subtype=0&monkey=2&keyframe=3", None),
        ("/videos/clip@2x.mp4", "/videos/clip@2x.mp4"),
        ("rtsp://cam/live lost\ncamera 2 @ 3", None),
        ("0", "0"),
    ],
)
def test_scrub_credentials(raw: str, scrubbed: str | None) -> None:
    assert scrub_credentials(raw) == (raw if scrubbed is None else scrubbed)


def any_case(word: str) -> st.SearchStrategy[str]:
    flips = st.lists(st.booleans(), min_size=len(word), max_size=len(word))
    return flips.map(
        lambda up: "".join(c.upper() if u else c.lower() for c, u in zip(word, up, strict=True))
    )


PRINTABLE = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))
"""Anything on one log line."""
IN_QUERY = st.characters(
    exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs"), exclude_characters="&;#"
)
"""Anything a query value holds before the next parameter, fragment or the end of the URL."""
KEYS = st.sampled_from(SECRET_KEYS).flatmap(any_case)


@given(user=st.text(PRINTABLE, max_size=12), password=st.text(PRINTABLE, min_size=1))
def test_no_userinfo_survives(user: str, password: str) -> None:
    """Whatever the password holds (spaces, '/', '@', '?', '://'), none of it is shown."""
    url = f"rtsp://{user}:{password}@cam.local:554/live?channel=1"
    # a password holding `key=` reads as a query value too; then the host is hidden as well
    assert scrub_credentials(url) in ("rtsp://***@cam.local:554/live?channel=1", "rtsp://***")


@given(key=KEYS, secret=st.text(IN_QUERY, min_size=1))
def test_no_query_secret_survives(key: str, secret: str) -> None:
    url = f"http://cam.local/x?channel=1&{key}={secret}&stream=2"
    # an '@' in the value reads as the end of a userinfo too; then the path is hidden as well
    assert scrub_credentials(url) in (
        f"http://cam.local/x?channel=1&{key}=***&stream=2",
        "http://***&stream=2",
    )


@given(key=KEYS, secret=st.text(IN_QUERY, min_size=1))
def test_no_secret_in_free_text_survives(key: str, secret: str) -> None:
    assert scrub_credentials(f"open failed: {key}={secret} (retrying)") == (
        f"open failed: {key}=*** (retrying)"
    )
