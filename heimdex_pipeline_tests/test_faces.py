"""Who is in it: faces found in the kept frames with dlib's packaged models (offline), grouped
into people across the library, search by a photo of a face or by a person (CLI, API, page),
and `people forget` and video deletion leaving no face row, vector or crop behind.

The slow tests index one small library once (two sample clips with faces, one without) with
the real models, and share it; tests that change it (forget, delete) build their own.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from heimdex_pipeline.catalog.models import Face, Person
from heimdex_pipeline.catalog.people import merge_people, name_person
from heimdex_pipeline.faces.grouping import Centres, place
from heimdex_pipeline.faces.scan import Frame, spread
from heimdex_pipeline.pipeline.checks import faces_inside_frames_one_row_each
from heimdex_pipeline.pipeline.local_runs import delete_videos, index_paths
from heimdex_pipeline.search.searcher import Searcher, SearchError
from heimdex_pipeline.stores.faces import face_tables
from heimdex_pipeline_tests.conftest import chromium_page, stores_of

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WITH_FACES = ("carphone_pristine.mp4", "movienet-test1.mp4")
WITHOUT_FACES = ("bikes.mp4",)


# --- fast: the parts -------------------------------------------------------------------------


def test_the_stage_reads_the_kept_frames_beside_the_picture_stages_in_its_own_pool():
    from heimdex_pipeline.pipeline.stages import STAGES

    (stage,) = [s for s in STAGES if s.asset == "faces"]
    assert stage.reads == ("scenes",) and stage.pool == "faces" and "faces" in stage.resources
    assert not stage.fails_video  # a faces failure never costs the video its other search
    assert not any("faces" in s.reads for s in STAGES)


def test_new_faces_join_the_nearest_person_and_people_keep_their_ids():
    rng = np.random.default_rng(7)
    ada, bo = rng.normal(0, 1, 128), rng.normal(0, 1, 128)
    ada, bo = 0.8 * ada / np.linalg.norm(ada), 0.8 * bo / np.linalg.norm(bo)  # 1.1 apart
    near = lambda centre, n: centre + rng.normal(0, 0.012, (n, 128))  # noqa: E731 ~0.14 off
    first, after = place(np.vstack([near(ada, 3), near(bo, 2)]), Centres.empty(128))
    assert first.person == [None] * 5 and first.new_person == [0, 0, 0, 1, 1]
    assert after.counts.tolist() == [3, 2]
    known = Centres([11, 42], after.centres, after.counts)  # ids the catalog gave them
    stranger = rng.normal(0, 1, 128)
    second, again = place(np.vstack([near(bo, 1), near(ada, 1), stranger]), known)
    assert second.person == [42, 11, None] and second.new_person == [None, None, 0]
    assert again.counts.tolist() == [4, 3, 1]
    assert np.allclose(again.centres[0], np.vstack([near(ada, 0), after.centres[0]])[0], atol=0.1)


def test_a_scene_is_scanned_in_frames_spread_over_it():
    frames = [Frame(t / 10, b"") for t in range(10)]
    assert [f.time_s for f in spread(frames, 3)] == [0.0, 0.4, 0.9]
    assert [f.time_s for f in spread(frames, 1)] == [0.5]
    assert spread(frames[:2], 3) == frames[:2]


# --- slow: the real models on real clips -----------------------------------------------------


def _frame(path: Path, at_s: float) -> Image.Image:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time >= at_s:
                return frame.to_image()
    raise AssertionError(f"{path} has no frame at {at_s}s")


def _recut(folder: Path, sample_videos: Path) -> Path:
    """A second video with the carphone speaker: two seconds of bikes.mp4, a cut, then the
    speaker mirrored (a new shot of them, in another video)."""
    out = folder / "speaker-again.mp4"
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 352, 288, "yuv420p"
        pictures = []
        with av.open(str(sample_videos / "bikes.mp4")) as bikes:
            for n, frame in enumerate(bikes.decode(video=0)):
                if n >= 50:
                    break
                pictures.append(frame.to_image().resize((352, 288)))
        with av.open(str(sample_videos / "carphone_pristine.mp4")) as speaker:
            for frame in speaker.decode(video=0):
                pictures.append(ImageOps.mirror(frame.to_image()).resize((352, 288)))
        for picture in pictures:
            for packet in stream.encode(av.VideoFrame.from_image(picture)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def _photo_of(path: Path, at_s: float, folder: Path) -> Path:
    """A photo of the face no clip holds as it is: a frame mirrored, cropped and enlarged."""
    picture = ImageOps.mirror(_frame(path, at_s))
    w, h = picture.size
    picture = picture.crop((w // 10, 0, w - w // 10, h)).resize((w * 2, h * 2))
    photo = folder / f"photo-of-{path.stem}.jpg"
    picture.save(photo, quality=92)
    return photo


def _speaker(ids: dict[str, str]) -> set[str]:
    """The videos the carphone speaker is in."""
    return {ids["carphone_pristine.mp4"], ids["speaker-again.mp4"]}


@pytest.fixture(scope="module")
def library(tmp_path_factory, sample_videos: Path, tiny_clip):
    """Three sample clips indexed with faces on (two show faces, one none) and a fourth video
    with the carphone speaker again; the photos to search by."""
    from heimdex_pipeline.settings import load_settings

    folder = tmp_path_factory.mktemp("faces")
    settings = load_settings(
        {
            "HEIMDEX_HOME": str(folder / "home"),
            "HEIMDEX_CLIP_MODEL": tiny_clip[0],
            "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
            "HEIMDEX_ASR_MODEL": "off",
            "HEIMDEX_FACES": "on",
        }
    )
    paths = [sample_videos / name for name in (*WITH_FACES, *WITHOUT_FACES)]
    paths.append(_recut(folder, sample_videos))
    outcomes = index_paths(paths, settings)
    assert [o.state for o in outcomes] == ["indexed"] * 4, [o.error for o in outcomes]
    by_name = {Path(o.source).name: o.video_id for o in outcomes}
    photos = {
        "carphone": _photo_of(sample_videos / "carphone_pristine.mp4", 2.0, folder),
        "no_face": _photo_of(sample_videos / "bikes.mp4", 3.0, folder),
    }
    return settings, by_name, photos


@pytest.mark.slow
def test_faces_are_found_in_the_clips_that_show_them_and_the_check_passes(library):
    settings, ids, _ = library
    stores = stores_of(settings)
    with stores.catalog.session() as session:
        faces = session.query(Face).all()
        by_video = {v: [f for f in faces if f.video_id == v] for v in ids.values()}
    assert by_video[ids["carphone_pristine.mp4"]], "no face found in carphone_pristine.mp4"
    assert by_video[ids["movienet-test1.mp4"]], "no face found in movienet-test1.mp4"
    assert not by_video[ids["bikes.mp4"]], "a face found in bikes.mp4, which shows none"
    for face in faces:
        assert face.h >= 32 and face.x >= 0 and face.x + face.w <= face.frame_w
        assert stores.objects.exists(face.crop_key)
        crop = Image.open(io.BytesIO(stores.objects.get_bytes(face.crop_key)))
        assert crop.format == "WEBP" and max(crop.size) <= 112
    for video_id in ids.values():  # the stage's check, as Dagster ran it
        outcome = faces_inside_frames_one_row_each(video_id, stores, None)
        assert outcome.passed, outcome.problems
    (table,) = face_tables(stores.vectors)
    assert stores.vectors.db.open_table(table).count_rows() == len(faces)


@pytest.mark.slow
def test_every_face_is_placed_in_a_person_of_its_own_video(library):
    settings, ids, _ = library
    stores = stores_of(settings)
    with stores.catalog.session() as session:
        faces = session.query(Face).all()
        people = {p.id: p for p in session.query(Person).all()}
    assert all(face.person_id in people for face in faces), "a face in no person"
    carphone = {f.person_id for f in faces if f.video_id == ids["carphone_pristine.mp4"]}
    movienet = {f.person_id for f in faces if f.video_id == ids["movienet-test1.mp4"]}
    assert not carphone & movienet, "the carphone speaker also placed among a film's actors"
    # the speaker is one person across two videos, not one per scene
    again = {f.person_id for f in faces if f.video_id == ids["speaker-again.mp4"]}
    assert carphone & again, "the speaker seen again in another video became someone else"
    assert max(people[p].video_count for p in carphone & again) == 2
    assert sum(people[p].face_count for p in people) == len(faces)


@pytest.mark.slow
def test_search_by_a_photo_finds_that_persons_scenes_first_and_only_under_the_threshold(library):
    settings, ids, photos = library
    searcher = Searcher(stores_of(settings))
    response = searcher.search(face=photos["carphone"], limit=50)
    assert response.hits, "the carphone speaker's photo found nothing"
    speaker_videos = _speaker(ids)
    with stores_of(settings).catalog.session() as session:
        carphone_scenes = {
            f.scene_id for f in session.query(Face).filter(Face.video_id.in_(speaker_videos))
        }
    k = len(carphone_scenes)
    first = response.hits[:k]
    assert {h.scene_id for h in first} == carphone_scenes  # precision 1.0 over the first k
    assert {h.video_id for h in first} == speaker_videos  # found across videos
    assert all(h.face is not None and h.face.distance < 0.6 for h in response.hits)
    assert ids["bikes.mp4"] not in {h.video_id for h in response.hits}
    distances = [h.face.distance for h in response.hits]
    assert distances == sorted(distances)
    hit = first[0]
    assert hit.matched == ["face"] and hit.play_from_s == hit.face.time_s
    assert hit.face.crop_url and all(0 <= v <= 1 for v in hit.face.box)
    # a tighter threshold keeps fewer, never more
    tight = searcher.search(face=photos["carphone"], limit=50, face_distance=0.3)
    assert {h.scene_id for h in tight.hits} <= {h.scene_id for h in response.hits}


@pytest.mark.slow
def test_a_photo_without_a_face_is_refused_saying_so(library):
    settings, _, photos = library
    with pytest.raises(SearchError, match=r"no face found.*\(0 faces\)"):
        Searcher(stores_of(settings)).search(face=photos["no_face"])


@pytest.mark.slow
def test_a_person_filter_narrows_a_text_search_to_their_scenes(library):
    settings, ids, _ = library
    stores = stores_of(settings)
    with stores.catalog.session() as session:
        face = session.query(Face).filter_by(video_id=ids["carphone_pristine.mp4"]).first()
        person_id = face.person_id
        name_person(session, person_id, "Carphone Speaker")
    searcher = Searcher(stores)
    everything = searcher.search(text="a person talking", mode="visual", limit=50)
    assert {h.video_id for h in everything.hits} > {ids["carphone_pristine.mp4"]}
    narrowed = searcher.search(text="a person talking", mode="visual", person="carphone speaker")
    assert narrowed.hits and {h.video_id for h in narrowed.hits} == _speaker(ids)
    assert all(h.face.person_name == "Carphone Speaker" for h in narrowed.hits)
    alone = searcher.search(person=str(person_id), limit=50)
    assert {h.video_id for h in alone.hits} == _speaker(ids)
    with pytest.raises(SearchError, match="no person"):
        searcher.search(person="Nobody Of That Name")


@pytest.mark.slow
def test_the_cli_searches_by_a_face_and_lists_people(library):
    settings, ids, photos = library
    env = {
        **os.environ,
        "HEIMDEX_HOME": str(settings.home),
        "HEIMDEX_CLIP_MODEL": settings.clip_model,
        "HEIMDEX_CLIP_PRETRAINED": settings.clip_pretrained,
        "HEIMDEX_FACES": "on",
    }
    heimdex = [sys.executable, "-m", "heimdex_pipeline.cli.main"]
    found = subprocess.run(
        [*heimdex, "search", "--face", str(photos["carphone"]), "--json"],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    answer = json.loads(found.stdout)
    assert answer["mode"] == "face" and answer["faces_in_photo"] == 1
    assert answer["hits"][0]["video_id"] == ids["carphone_pristine.mp4"]
    assert answer["hits"][0]["face"]["distance"] < 0.6
    people = subprocess.run(
        [*heimdex, "people", "--json"],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    listed = json.loads(people.stdout)["people"]
    assert listed and all(p["faces"] >= 1 and p["crop_url"] for p in listed)
    refused = subprocess.run(
        [*heimdex, "search", "--face", str(photos["no_face"])],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "no face found" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_api_answers_face_search_people_and_a_rename(library):
    from heimdex_pipeline.serve.app import create_app

    settings, ids, photos = library
    with TestClient(create_app(settings)) as client:
        with photos["carphone"].open("rb") as photo:
            answer = client.post("/api/search/face", files={"photo": ("p.jpg", photo)})
        assert answer.status_code == 200, answer.text
        hits = answer.json()["hits"]
        assert hits[0]["video_id"] == ids["carphone_pristine.mp4"] and hits[0]["face"]
        with photos["no_face"].open("rb") as photo:
            refused = client.post("/api/search/face", files={"photo": ("p.jpg", photo)})
        assert refused.status_code == 400 and "no face found" in refused.json()["detail"]
        people = client.get("/api/people").json()["people"]
        person_id = hits[0]["face"]["person_id"]
        assert person_id in {p["person_id"] for p in people}
        renamed = client.put(f"/api/people/{person_id}/name", json={"name": "Ada <b>"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "Ada <b>"
        one = client.get(f"/api/people/{person_id}").json()
        assert one["person"]["name"] == "Ada <b>" and one["scenes"]
        assert {s["video_id"] for s in one["scenes"]} == _speaker(ids)
        assert all(s["video_url"] and "#t=" in s["video_url"] for s in one["scenes"])
        assert client.get("/api/people/999999").status_code == 404
        narrowed = client.get("/api/search", params={"q": "talking", "person": "Ada <b>"})
        assert narrowed.status_code == 200, narrowed.text
        assert {h["video_id"] for h in narrowed.json()["hits"]} == _speaker(ids)
        schema = client.get("/openapi.json").json()
        for path in ("/api/people", "/api/people/{person_id}", "/api/search/face"):
            assert path in schema["paths"]


@pytest.mark.slow
def test_the_people_pages_show_faces_and_rename_in_place(library):
    from heimdex_pipeline_tests.conftest import served

    settings, ids, photos = library
    ARTIFACTS.mkdir(exist_ok=True)
    with served(settings) as base, chromium_page() as page:
        ran = []
        page.on("dialog", lambda dialog: (ran.append(dialog.message), dialog.dismiss()))
        page.goto(f"{base}/people")
        cards = page.locator(".card.person")
        assert cards.count() >= 2
        page.wait_for_function(
            "[...document.querySelectorAll('.person img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        first = cards.first
        person_id = first.get_attribute("data-person")
        field = first.locator("input[name=name]")
        field.fill("Ada Lovelace")
        field.press("Enter")
        page.wait_for_selector(f"form.rename.saved[data-person='{person_id}']")
        page.screenshot(path=str(ARTIFACTS / "faces-people.png"), full_page=True)
        page.goto(f"{base}/people/{person_id}")
        assert page.locator("h1").inner_text() == "Ada Lovelace"
        scene_links = page.locator("a.card.hit")
        assert scene_links.count() >= 1
        assert "?t=" in scene_links.first.get_attribute("href")
        page.screenshot(path=str(ARTIFACTS / "faces-person.png"), full_page=True)
        page.goto(f"{base}/videos/{ids['carphone_pristine.mp4']}")
        faces = page.locator(".faces-of-video .face")
        assert faces.count() >= 1
        page.screenshot(path=str(ARTIFACTS / "faces-video.png"), full_page=True)
        page.goto(base)
        page.set_input_files("#face", str(photos["carphone"]))
        page.wait_for_selector(".hit .who:not([hidden])", timeout=60_000)
        assert "scenes for the face" in page.locator("#status").inner_text()
        page.screenshot(path=str(ARTIFACTS / "faces-search.png"), full_page=True)
        assert not ran, f"a dialog opened: {ran}"


@pytest.mark.slow
def test_merge_and_forget_people_and_delete_a_video_leave_no_face_behind(
    make_settings, sample_videos: Path
):
    settings = make_settings(HEIMDEX_FACES="on")
    _forget_and_delete(settings, sample_videos)


@pytest.mark.slow
def test_forget_and_delete_leave_no_face_behind_on_s3(make_settings, s3_env, sample_videos):
    settings = make_settings(HEIMDEX_FACES="on", **s3_env)
    _forget_and_delete(settings, sample_videos)


def _face_state(stores) -> tuple[int, int, list[str]]:
    with stores.catalog.session() as session:
        faces = session.query(Face).count()
    rows = sum(stores.vectors.db.open_table(t).count_rows() for t in face_tables(stores.vectors))
    crops = [info.key for info in stores.objects.list("faces/")]
    return faces, rows, crops


def _forget_and_delete(settings, sample_videos: Path) -> None:
    from heimdex_pipeline.library.people import forget

    outcomes = index_paths([sample_videos / n for n in WITH_FACES], settings)
    assert [o.state for o in outcomes] == ["indexed", "indexed"], [o.error for o in outcomes]
    carphone, film = (o.video_id for o in outcomes)
    stores = stores_of(settings)
    faces, rows, crops = _face_state(stores)
    assert faces == rows == len(crops) > 0
    with stores.catalog.session() as session:
        mine = [f.person_id for f in session.query(Face).filter_by(video_id=carphone)]
        people = sorted(set(mine))
        if len(people) >= 2:  # a person seen as two: merged, the faces stay
            merge_people(session, people[0], people[1])
            assert session.get(Person, people[1]) is None
        target = people[0]
        lost = session.query(Face).filter_by(person_id=target).count()
    person_id, removed = forget(stores, target)
    assert person_id == target and removed == lost > 0
    after = _face_state(stores)
    assert after[0] == after[1] == len(after[2]) == faces - removed
    with stores.catalog.session() as session:
        assert session.get(Person, target) is None
        assert not session.query(Face).filter_by(person_id=target).count()
    delete_videos([film], settings)  # its faces leave every person, row and crop
    faces_left, rows_left, crops_left = _face_state(stores)
    assert faces_left == rows_left == len(crops_left)
    assert not [key for key in crops_left if f"/{film}/" in key]
    with stores.catalog.session() as session:
        assert not session.query(Face).filter_by(video_id=film).count()
        for person in session.query(Person).all():  # counts follow the faces that are left
            assert person.face_count == session.query(Face).filter_by(person_id=person.id).count()
            assert person.face_count > 0
