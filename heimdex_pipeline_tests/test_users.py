"""Libraries of their own: users and tokens, every read and write scoped to its owner, and
tests that try to get in.

The slow suite indexes the same spoken clip with a face twice, once into alice's library and
once into bob's (two videos that look and sound alike, so a search or a grouping that ignored
the owner would mix them), on PostgreSQL with LanceDB on disk and the real Whisper and dlib
models. Then every operation of the OpenAPI document (enumerated: a route added later gets no
pass) is tried with each user's token against the other's ids, in paths and in filters, and
with no token, a wrong one and a revoked one; `/media/` with the other's object keys; the pages
in Chromium. No answer to alice may carry bob's video id, title, scene, face or URL.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from heimdex_pipeline.catalog.database import Catalog, upgrade
from heimdex_pipeline.catalog.models import Face, Person, Scene, User, Video, VideoState
from heimdex_pipeline.catalog.users import (
    UnknownUserError,
    UserError,
    add_user,
    caller_for_token,
    renew_token,
    revoke,
    token_hash,
)
from heimdex_pipeline.catalog.videos import OwnedByAnotherError, register_video
from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.pipeline.sensors.inbox import owner_of_key
from heimdex_pipeline.search.searcher import Searcher
from heimdex_pipeline.serve.app import create_app
from heimdex_pipeline.serve.sign_in import SignInLimiter
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline.stores.keys import video_of_key
from heimdex_pipeline.stores.vectors import VectorStore
from heimdex_pipeline_tests.conftest import (
    chromium_page,
    fresh_database,
    served,
    stores_of,
    suite_env,
)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ADMIN_TOKEN = "admin-Token-for-the-users-suite-1"
SAID = "the lighthouse keeper counted seven ships"


# --- fast: the parts -------------------------------------------------------------------------


def test_a_token_is_kept_only_as_its_hash_and_dies_when_renewed_or_revoked(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    upgrade(url)
    catalog = Catalog(url)
    with catalog.session() as session:
        first = add_user(session, "alice")
        add_user(session, "root", admin=True)
    with catalog.session() as session:
        stored = session.scalar(select(User).where(User.name == "alice"))
        assert stored.token_sha256 == hashlib.sha256(first.encode()).hexdigest()
        assert first not in repr(stored.__dict__)
        assert len(first) >= 43  # 32 random bytes, URL-safe
        assert caller_for_token(session, first).name == "alice"
        assert not caller_for_token(session, first).admin
        assert caller_for_token(session, "nope") is None and caller_for_token(session, "") is None
        second = renew_token(session, "alice")
    with catalog.session() as session:
        assert caller_for_token(session, first) is None
        assert caller_for_token(session, second).name == "alice"
        revoke(session, "alice")
    with catalog.session() as session:
        assert caller_for_token(session, second) is None
        with pytest.raises(UserError, match="already"):
            add_user(session, "alice")
        with pytest.raises(UserError, match="not a user name"):
            add_user(session, "Alice/../x")
        with pytest.raises(UnknownUserError):
            revoke(session, "nobody")
    raw = (tmp_path / "catalog.sqlite").read_bytes()
    assert first.encode() not in raw and second.encode() not in raw
    assert token_hash(second).encode() not in raw  # revoked: even the hash is gone


def test_inbox_keys_map_to_their_users_folder_and_others_are_skipped():
    users = {"alice", "bob"}
    assert owner_of_key("incoming/alice/trip.mp4", users, "local") == "alice"
    assert owner_of_key("incoming/bob/2024/trip.mp4", users, "local") == "bob"
    assert owner_of_key("incoming/trip.mp4", users, "local") == "local"
    assert owner_of_key("incoming/mallory/trip.mp4", users, "local") is None
    assert owner_of_key("incoming/sub/trip.mp4", set(), "local") == "local"  # no users: one library
    assert video_of_key("thumbnails/v-1/s.webp") == "v-1"
    assert video_of_key("inbox/v-1/source.mp4") == "v-1"
    assert video_of_key("incoming/alice/trip.mp4") is None
    assert video_of_key("runs/r/x.json") is None


def test_sign_ins_are_limited_per_address():
    now = [0.0]
    limiter = SignInLimiter(attempts=3, window_s=60, clock=lambda: now[0])
    assert [limiter.retry_after("1.2.3.4") for _ in range(3)] == [None] * 3
    assert limiter.retry_after("1.2.3.4") == 60
    assert limiter.retry_after("5.6.7.8") is None  # another address is counted apart
    now[0] = 30.5
    assert limiter.retry_after("1.2.3.4") == 30
    now[0] = 60.0
    assert limiter.retry_after("1.2.3.4") is None


def test_a_source_in_one_library_is_not_taken_into_another(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    upgrade(url)
    with Catalog(url).session() as session:
        register_video(session, "v-1", "file:///a.mp4", "a.mp4", owner="alice")
        assert register_video(session, "v-1", "file:///a.mp4", "a.mp4", owner="alice").owner
        with pytest.raises(OwnedByAnotherError, match="alice's"):
            register_video(session, "v-1", "file:///a.mp4", "a.mp4", owner="bob")


# --- slow: two users' libraries on real stores -----------------------------------------------


def _alike_clips(folder: Path, sample_videos: Path) -> tuple[Path, Path]:
    """One spoken clip with a face (carphone's speaker over espeak-ng's words), as two files."""
    from benchmarks.speech_corpus import Utterance, frames_from, write_clip

    pictures = frames_from(sample_videos / "carphone_pristine.mp4", 2, seed=3)
    spoken = write_clip(folder / "clip.mp4", pictures, [3.0], 6.0, [Utterance(SAID, 0.5)])
    alice = folder / "alice-holiday.mp4"
    bob = folder / "bob-holiday.mp4"
    shutil.copy(spoken.path, alice)
    shutil.copy(spoken.path, bob)
    return alice, bob


@pytest.fixture(scope="module")
def libraries(tmp_path_factory, sample_videos, tiny_clip, postgres_server_url):
    """alice's and bob's libraries (the same clip each), carol revoked, an admin token."""
    folder = tmp_path_factory.mktemp("users")
    with fresh_database(postgres_server_url) as database_url:
        env = suite_env(
            folder / "home",
            tiny_clip,
            HEIMDEX_DATABASE_URL=database_url,
            HEIMDEX_API_TOKEN=ADMIN_TOKEN,
            HEIMDEX_ASR_MODEL="tiny.en",
            HEIMDEX_FACES="on",
        )
        settings = load_settings(env)
        stores = stores_of(settings)
        with stores.catalog.session() as session:
            tokens = {name: add_user(session, name) for name in ("alice", "bob", "carol")}
        with stores.catalog.session() as session:
            revoke(session, "carol")
        alice_clip, bob_clip = _alike_clips(folder, sample_videos)
        ids = {}
        for owner, clip in (("alice", alice_clip), ("bob", bob_clip)):
            (outcome,) = index_paths([clip], settings, owner=owner)
            assert outcome.state == "indexed", outcome.error
            ids[owner] = outcome.video_id
        yield {"settings": settings, "stores": stores, "tokens": tokens, "ids": ids}


def _library_of(stores, owner: str, video_id: str) -> dict:
    """Everything of a user's that must never reach another: ids, title, keys."""
    with stores.catalog.session() as session:
        video = session.get(Video, video_id)
        scenes = list(session.scalars(select(Scene).where(Scene.video_id == video_id)))
        faces = list(session.scalars(select(Face).where(Face.video_id == video_id)))
        people = sorted({face.person_id for face in faces if face.person_id})
        title, source = video.title, video.source_uri
    return {
        "owner": owner,
        "video_id": video_id,
        "title": Path(title).stem,
        "source": source,
        "scenes": [scene.id for scene in scenes],
        "thumbnails": [scene.thumbnail_key for scene in scenes if scene.thumbnail_key],
        "faces": [face.id for face in faces],
        "crops": [face.crop_key for face in faces],
        "people": people,
    }


def _leaks(text: str, other: dict) -> list[str]:
    """What of `other`'s library a text carries."""
    found = [other["video_id"], other["title"], other["source"], *other["scenes"]]
    found += [*other["faces"], *other["thumbnails"], *other["crops"]]
    leaks = [item for item in found if item and item in text]
    leaks += [f"owner {other['owner']}" for _ in re.findall(f'"owner": ?"{other["owner"]}"', text)]
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    ids = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "person_id" and isinstance(inner, int):
                    ids.add(inner)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(body)
    return leaks + [f"person {p}" for p in ids & set(other["people"])]


def _jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


def _attempts(other: dict, frame: bytes) -> dict[tuple[str, str], list[dict]]:
    """For every operation of the document: requests aimed at `other`'s library (their ids in
    the path and in the filters). A new operation with no entry here fails the suite."""
    person = str(other["people"][0]) if other["people"] else "1"
    video = other["video_id"]
    return {
        ("GET", "/health"): [{}],
        ("GET", "/api/search"): [
            {"params": {"q": SAID}},
            {"params": {"q": "lighthouse", "mode": "speech"}},
            {"params": {"q": "a face", "mode": "visual", "video": video}},
            {"params": {"q": "keeper", "person": person}},
        ],
        ("POST", "/api/search/image"): [
            {"files": {"image": ("frame.jpg", frame)}},
            {"files": {"image": ("frame.jpg", frame)}, "params": {"video": video}},
        ],
        ("POST", "/api/search/face"): [
            {"files": {"photo": ("face.jpg", frame)}},
            {"files": {"photo": ("face.jpg", frame)}, "data": {"q": "keeper"}},
        ],
        ("GET", "/api/videos"): [{"params": {"limit": 1000}}],
        ("POST", "/api/videos"): [],  # an upload goes into the caller's own library: below
        ("GET", "/api/videos/{video_id}"): [{"path": {"video_id": video}}],
        ("DELETE", "/api/videos/{video_id}"): [{"path": {"video_id": video}}],
        ("GET", "/api/people"): [{}],
        ("GET", "/api/people/{person_id}"): [{"path": {"person_id": person}}],
        ("PUT", "/api/people/{person_id}/name"): [
            {"path": {"person_id": person}, "json": {"name": "renamed by another"}}
        ],
    }


def _operations(client: TestClient) -> list[tuple[str, str]]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    document = client.get("/openapi.json", headers=headers).json()
    return [(m.upper(), path) for path, methods in document["paths"].items() for m in methods]


def _send(client: TestClient, method: str, template: str, attempt: dict, headers: dict):
    path = template
    for name, value in attempt.get("path", {}).items():
        path = path.replace("{" + name + "}", value)
    return client.request(
        method,
        path,
        params=attempt.get("params"),
        files=attempt.get("files"),
        data=attempt.get("data"),
        json=attempt.get("json"),
        headers=headers,
    )


def _frame_of(stores, thumbnail_key: str) -> bytes:
    return _jpeg(Image.open(io.BytesIO(stores.objects.get_bytes(thumbnail_key))))


@pytest.mark.slow
def test_the_two_libraries_hold_alike_videos_each_with_its_owner(libraries):
    stores, ids = libraries["stores"], libraries["ids"]
    with stores.catalog.session() as session:
        videos = {v.id: v for v in session.scalars(select(Video))}
        people = list(session.scalars(select(Person)))
        faces = list(session.scalars(select(Face)))
    assert {videos[ids["alice"]].owner, videos[ids["bob"]].owner} == {"alice", "bob"}
    assert videos[ids["alice"]].sha256 == videos[ids["bob"]].sha256  # alike, byte for byte
    assert all(v.state is VideoState.INDEXED for v in videos.values())
    assert {f.video_id for f in faces} == set(ids.values()), "the clip's face was not found"
    owner_of_video = {v.id: v.owner for v in videos.values()}
    for person in people:  # one user's faces never join another user's person
        mine = {owner_of_video[f.video_id] for f in faces if f.person_id == person.id}
        assert mine == {person.owner}, (person.id, mine)
    assert {p.owner for p in people} == {"alice", "bob"}
    for table in ("scenes", "transcripts", "faces"):
        (name,) = [n for n in stores.vectors.table_names() if n.startswith(table + "_")]
        rows = stores.vectors.open(name).search().select(["video_id", "owner"]).to_list()
        assert rows and all(owner_of_video[r["video_id"]] == r["owner"] for r in rows), name


@pytest.mark.slow
def test_no_answer_to_one_user_carries_the_others_library(libraries):
    stores, tokens, ids = libraries["stores"], libraries["tokens"], libraries["ids"]
    client = TestClient(create_app(libraries["settings"], stores))
    owned = {owner: _library_of(stores, owner, ids[owner]) for owner in ids}
    operations = _operations(client)
    assert len(operations) >= 11, operations
    for me, other in (("alice", "bob"), ("bob", "alice")):
        headers = {"Authorization": f"Bearer {tokens[me]}"}
        frame = _frame_of(stores, owned[other]["thumbnails"][0])
        attempts = _attempts(owned[other], frame)
        assert set(operations) == set(attempts), "an operation no attempt covers"
        for method, template in operations:
            for attempt in attempts[(method, template)]:
                answer = _send(client, method, template, attempt, headers)
                where = f"{me} → {method} {template} {attempt.get('params') or ''}"
                if template != "/health":  # (which says 503 while the model warms)
                    assert answer.status_code < 500, (where, answer.text)
                echoed = answer.text  # what the caller sent may come back ("no video 'X'")
                sent = [*attempt.get("path", {}).values(), *(attempt.get("params") or {}).values()]
                for value in sent:
                    echoed = echoed.replace(str(value), "")
                leaked = _leaks(echoed, owned[other])
                assert not leaked, (where, leaked)
                if "{" in template:  # the other's id in the path: as if it did not exist
                    assert answer.status_code == 404, (where, answer.status_code)
        # and the caller's own library answers them (the checks above can fail)
        mine = client.get("/api/videos", headers=headers).json()
        assert [v["video_id"] for v in mine["videos"]] == [ids[me]]
        assert mine["videos"][0]["owner"] == me
        found = client.get("/api/search", params={"q": SAID, "limit": 50}, headers=headers).json()
        assert found["hits"] and {h["video_id"] for h in found["hits"]} == {ids[me]}
        said = client.get(
            "/api/search", params={"q": "lighthouse keeper", "mode": "speech"}, headers=headers
        ).json()
        assert said["hits"] and said["hits"][0]["speech"]["text"], said
        face = client.post("/api/search/face", files={"photo": ("f.jpg", frame)}, headers=headers)
        assert {h["video_id"] for h in face.json()["hits"]} == {ids[me]}, face.text
        people = client.get("/api/people", headers=headers).json()["people"]
        assert people and {p["owner"] for p in people} == {me}
    with stores.catalog.session() as session:  # bob's video and person are as they were
        assert session.get(Video, ids["bob"]).state is VideoState.INDEXED
        assert session.get(Video, ids["alice"]).state is VideoState.INDEXED
        assert not list(session.scalars(select(Person).where(Person.name.is_not(None))))


@pytest.mark.slow
def test_a_page_of_k_hits_is_k_of_the_callers_scenes_whatever_ranks_higher(libraries, monkeypatch):
    import heimdex_pipeline.search.faces as face_search
    import heimdex_pipeline.search.searcher as searching

    stores, ids = libraries["stores"], libraries["ids"]
    searcher = Searcher(stores)
    asked: list[tuple[str, str | None]] = []  # what LanceDB was asked to pre-filter by

    def spy(name, real, position):
        def call(*args, **kwargs):
            asked.append((name, args[position] if len(args) > position else kwargs.get("where")))
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(searching, "nearest", spy("visual", searching.nearest, 2))
    monkeypatch.setattr(searching, "speech_ranking", spy("speech", searching.speech_ranking, 2))
    monkeypatch.setattr(face_search, "nearest_faces", spy("face", face_search.nearest_faces, 3))
    frame = Image.open(io.BytesIO(stores.objects.get_bytes(
        _library_of(stores, "alice", ids["alice"])["thumbnails"][0])))  # fmt: skip
    searcher.search(text=SAID, owner="alice")
    searcher.search(face=frame, owner="alice")
    assert {name for name, _ in asked} == {"visual", "speech", "face"}
    for name, where in asked:  # the owner is in LanceDB's pre-filter, in every mode
        assert where and "owner = 'alice'" in where, (name, where)
    asked.clear()
    with stores.catalog.session() as session:
        count = len(list(session.scalars(select(Scene).where(Scene.video_id == ids["alice"]))))
    everyone = searcher.search(text=SAID, mode="visual", limit=2 * count)
    assert {hit.video_owner for hit in everyone.hits} == {"alice", "bob"}  # an admin sees both
    for owner in ("alice", "bob"):
        for mode in ("visual", "speech", "hybrid"):
            hits = searcher.search(text=SAID, mode=mode, limit=count, owner=owner).hits
            assert {hit.video_owner for hit in hits} == {owner}, (owner, mode)
            if mode == "visual":  # as many as asked for, though the other's tie with them
                assert len(hits) == count


@pytest.mark.slow
def test_no_token_a_wrong_or_a_revoked_one_gets_nothing_anywhere(libraries):
    client = TestClient(create_app(libraries["settings"], libraries["stores"]))
    revoked = libraries["tokens"]["carol"]
    frame = _frame_of(libraries["stores"], _library_of(
        libraries["stores"], "alice", libraries["ids"]["alice"])["thumbnails"][0])  # fmt: skip
    attempts = _attempts(_library_of(libraries["stores"], "bob", libraries["ids"]["bob"]), frame)
    attempts[("POST", "/api/videos")] = [{"files": {"file": ("x.mp4", b"\x00" * 64)}}]
    for how, headers in {
        "no token": {},
        "a wrong token": {"Authorization": "Bearer wrong"},
        "a revoked token": {"Authorization": f"Bearer {revoked}"},
        "a user's token as a cookie, revoked": {"Cookie": f"heimdex_token={revoked}"},
    }.items():
        for method, template in _operations(client):
            for attempt in attempts[(method, template)]:
                if template == "/health":  # the one route for anyone (it names no video)
                    continue
                answer = _send(client, method, template, attempt, headers)
                assert answer.status_code == 401, (how, method, template, answer.text)
        for page in ("/", "/videos", f"/videos/{libraries['ids']['bob']}", "/people", "/docs"):
            answer = client.get(page, headers=headers, follow_redirects=False)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert not list(libraries["stores"].objects.list("incoming/"))


@pytest.mark.slow
def test_media_of_another_users_video_is_not_there_for_them(libraries):
    stores, tokens, ids = libraries["stores"], libraries["tokens"], libraries["ids"]
    client = TestClient(create_app(libraries["settings"], stores))
    for me, other in (("alice", "bob"), ("bob", "alice")):
        theirs = _library_of(stores, other, ids[other])
        keys = [*theirs["thumbnails"][:2], *theirs["crops"][:2]]
        keys += [info.key for info in stores.objects.list(f"inbox/{ids[other]}/")]
        assert len(keys) >= 3, keys  # a thumbnail, a face crop, the video
        for key in keys:
            as_me = client.get(f"/media/{key}", headers={"Authorization": f"Bearer {tokens[me]}"})
            assert as_me.status_code == 404, (me, key)
            assert other not in as_me.text.replace(key, "")  # the key asked for, echoed, alone
            as_them = client.get(f"/media/{key}", cookies={"heimdex_token": tokens[other]})
            assert as_them.status_code == 200, (other, key)
            as_admin = client.get(
                f"/media/{key}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            assert as_admin.status_code == 200, key


@pytest.mark.slow
def test_an_admin_sees_every_library_and_whose_each_video_is(libraries):
    client = TestClient(create_app(libraries["settings"], libraries["stores"]))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    listed = client.get("/api/videos", headers=headers).json()["videos"]
    assert {(v["video_id"], v["owner"]) for v in listed} == {
        (libraries["ids"]["alice"], "alice"),
        (libraries["ids"]["bob"], "bob"),
    }
    detail = client.get(f"/api/videos/{libraries['ids']['bob']}", headers=headers).json()
    assert detail["owner"] == "bob"
    page = client.get("/videos", headers=headers)
    assert page.status_code == 200 and 'class="owner"' in page.text and ">bob<" in page.text


@pytest.mark.slow
def test_an_upload_goes_into_the_uploaders_library(libraries):
    stores, tokens = libraries["stores"], libraries["tokens"]
    client = TestClient(create_app(libraries["settings"], stores))
    clip = Path(libraries["settings"].home).parent / "alice-holiday.mp4"
    answer = client.post(
        "/api/videos",
        files={"file": ("beach day.mp4", clip.read_bytes())},
        headers={"Authorization": f"Bearer {tokens['alice']}"},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["owner"] == "alice" and body["key"].startswith("incoming/alice/")
    bob = client.get("/api/videos", headers={"Authorization": f"Bearer {tokens['bob']}"}).json()
    assert body["video_id"] not in {v["video_id"] for v in bob["videos"]}
    with stores.catalog.session() as session:
        assert session.get(Video, body["video_id"]).owner == "alice"
    from heimdex_pipeline.library.lifecycle import delete_video

    delete_video(body["video_id"], stores)  # the module's libraries stay as they were


@pytest.mark.slow
def test_sign_in_sets_a_secure_cookie_behind_https_and_is_limited(libraries):
    settings = load_settings(
        {**_env_of(libraries["settings"]), "HEIMDEX_PUBLIC_URL": "https://heimdex.example"}
    )
    client = TestClient(create_app(settings, libraries["stores"]))
    signed = client.post(
        "/login",
        data={"token": libraries["tokens"]["alice"], "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    wrong = client.post("/login", data={"token": libraries["tokens"]["carol"]},
                        follow_redirects=False)  # fmt: skip
    assert "wrong=1" in wrong.headers["location"]  # a revoked token does not sign in
    answers = [client.post("/login", data={"token": "guess"}, follow_redirects=False)
               for _ in range(12)]  # fmt: skip
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert int(limited[0].headers["retry-after"]) > 0 and "try again" in limited[0].text


def _env_of(settings) -> dict[str, str]:
    return {
        "HEIMDEX_HOME": str(settings.home),
        "HEIMDEX_DATABASE_URL": settings.database_url,
        "HEIMDEX_CLIP_MODEL": settings.clip_model,
        "HEIMDEX_CLIP_PRETRAINED": settings.clip_pretrained,
        "HEIMDEX_API_TOKEN": ADMIN_TOKEN,
        "HEIMDEX_ASR_MODEL": "tiny.en",
        "HEIMDEX_FACES": "on",
    }


@pytest.mark.slow
def test_each_user_signs_in_and_sees_only_their_videos_in_chromium(libraries):
    ARTIFACTS.mkdir(exist_ok=True)
    ids, tokens = libraries["ids"], libraries["tokens"]
    with served(libraries["settings"]) as base, chromium_page() as page:
        for me, other in (("alice", "bob"), ("bob", "alice"), ("admin", None)):
            page.context.clear_cookies()
            page.goto(f"{base}/videos")
            assert "/login" in page.url
            page.fill("input[name=token]", ADMIN_TOKEN if me == "admin" else tokens[me])
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/videos$"))
            page.wait_for_selector(".card.video")
            page.screenshot(path=str(ARTIFACTS / f"users-videos-{me}.png"), full_page=True)
            shown = page.eval_on_selector_all(".card.video", "cards => cards.map(c => c.href)")
            if other is None:
                assert {ids["alice"], ids["bob"]} <= {h.rsplit("/", 1)[-1] for h in shown}
                assert page.locator(".card.video .owner").count() >= 2
                continue
            assert [h.rsplit("/", 1)[-1] for h in shown] == [ids[me]], shown
            assert page.locator(".card.video .owner").count() == 0
            assert me in page.inner_text("header .who")
            page.goto(f"{base}/")
            page.fill("#q", "lighthouse keeper")
            page.keyboard.press("Enter")
            page.wait_for_selector(".card.hit")
            hrefs = page.eval_on_selector_all(".card.hit", "cards => cards.map(c => c.href)")
            assert hrefs and all(f"/videos/{ids[me]}" in h for h in hrefs), hrefs
            page.screenshot(path=str(ARTIFACTS / f"users-search-{me}.png"), full_page=True)
            page.goto(f"{base}/videos/{ids[other]}")
            assert "no video" in page.content()


@pytest.mark.slow
def test_a_catalog_from_before_users_is_the_default_owners(tmp_path, postgres_url):
    upgrade(postgres_url, "0004")
    catalog = Catalog(postgres_url)
    with catalog.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO videos (id, source_uri, title, state, created_at, updated_at) "
            "VALUES ('old-1', 'file:///old.mp4', 'old.mp4', 'indexed', now(), now())"
        )
        connection.exec_driver_sql(
            "INSERT INTO people (model_id, centre, face_count, video_count, created_at, "
            "updated_at) VALUES ('m', '\\x00', 0, 0, now(), now())"
        )
    VectorStore(str(tmp_path / "lancedb")).db.create_table(  # as a table was before owners
        "scenes_tiny_8_old",
        pa.table({"scene_id": ["old-1-s0"], "video_id": ["old-1"], "vector": [[0.0] * 8]}),
    )
    upgrade(postgres_url, default_owner="grandma")
    with catalog.session() as session:
        assert session.get(Video, "old-1").owner == "grandma"
        assert {p.owner for p in session.scalars(select(Person))} == {"grandma"}
    reopened = VectorStore(str(tmp_path / "lancedb"), default_owner="grandma")
    rows = reopened.open("scenes_tiny_8_old").search().to_list()
    assert [(r["video_id"], r["owner"]) for r in rows] == [("old-1", "grandma")]


@pytest.mark.slow
def test_the_inbox_puts_a_users_folder_in_their_library_and_says_why_it_skips_others(
    make_settings, sample_videos
):
    import dagster as dg

    from heimdex_pipeline.pipeline.sensors.inbox import InboxCursor, scan_inbox
    from heimdex_pipeline_tests.test_sensors import asked_long_ago, tick

    settings = make_settings()
    stores = stores_of(settings)
    with stores.catalog.session() as session:
        add_user(session, "alice")
    clip = sample_videos / "realshort.mp4"
    for key in ("incoming/alice/trip.mp4", "incoming/mallory/trip.mp4", "incoming/top.mp4"):
        stores.objects.put_file(key, clip)
    instance = dg.DagsterInstance.ephemeral()
    refused = scan_inbox(stores, InboxCursor(), instance).refused  # what the tick logs
    assert len(refused) == 1 and "incoming/mallory/trip.mp4" in refused[0]
    assert "'mallory' is no user" in refused[0] and "incoming/<user>/" in refused[0]
    with stores.catalog.session() as session:
        owners = {v.store_key: v.owner for v in session.scalars(select(Video))}
    assert owners == {"incoming/alice/trip.mp4": "alice", "incoming/top.mp4": "local"}
    asked_long_ago(stores)  # that scan's runs never came
    result = tick(settings, instance)  # a tick asks for the two, never for mallory's
    (added,) = result.dynamic_partitions_requests
    with stores.catalog.session() as session:
        assert sorted(added.partition_keys) == sorted(v.id for v in session.scalars(select(Video)))
    assert result.run_requests


@pytest.mark.slow
def test_the_users_command_prints_a_token_once_and_lists_and_revokes(make_settings, capsys):
    from heimdex_pipeline.cli.main import main

    settings = make_settings()
    stores_of(settings)
    env = {"HEIMDEX_HOME": str(settings.home)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        capsys.readouterr()
        assert main(["users", "add", "alice"]) == 0
        token = capsys.readouterr().out.strip()
        assert len(token) >= 43
        assert main(["users", "add", "root", "--admin"]) == 0
        capsys.readouterr()
        assert main(["users", "list"]) == 0
        listed = capsys.readouterr().out
        assert re.search(r"alice\s+user\s+active", listed) and re.search(r"root\s+admin", listed)
        assert token not in listed
        assert main(["users", "revoke", "alice"]) == 0
        capsys.readouterr()
        assert main(["users", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        assert rows["alice"]["state"] == "revoked" and rows["root"]["admin"] is True
        assert main(["users", "revoke", "nobody"]) == 2
        assert "no user 'nobody'" in capsys.readouterr().err
        assert main(["index", "--owner", "nobody", str(Path(__file__))]) == 2
    with stores_of(settings).catalog.session() as session:
        assert caller_for_token(session, token) is None
        assert not list(session.scalars(select(Video)))  # an unknown owner registers nothing
