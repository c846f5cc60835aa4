"""What is said: a transcript per video from its audio (Whisper tiny.en, the packaged model),
lines assigned to scenes, full-text and hybrid search that plays from the words, statuses for
audio that is missing, silent or broken, and nothing left behind by a delete.

The slow tests index one small library once (a spoken clip with a cut through a sentence, a
clip whose audio packets are garbage, and two sample clips: no audio, no speech) and share it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from benchmarks.speech_corpus import Utterance, break_audio, pattern_pictures, write_clip
from heimdex_pipeline.catalog.database import upgrade
from heimdex_pipeline.catalog.models import Video, VideoState, VideoTranscript
from heimdex_pipeline.catalog.videos import (
    activate_complete_models,
    active_speech_model,
    record_transcript,
    set_state,
)
from heimdex_pipeline.media.audio import AudioUnreadableError, NoAudioError, read_audio
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.pipeline.local_runs import delete_videos, index_paths
from heimdex_pipeline.search.speech import mark, speech_ranking
from heimdex_pipeline.settings import SettingsError, load_settings
from heimdex_pipeline.speech.model import AsrLoadError, resolve_asr_model
from heimdex_pipeline.speech.transcript import (
    SceneSpan,
    Segment,
    Word,
    lines_by_scene,
    repeats_itself,
)
from heimdex_pipeline.stores import open_stores
from heimdex_pipeline.stores.transcripts import (
    replace_lines_of_videos,
    transcript_tables,
    transcripts_schema,
    transcripts_table,
)
from heimdex_pipeline_tests.conftest import chromium_page, stores_of, suite_env

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PURPLE = "bring the purple umbrella tomorrow"
KEEPER = "the lighthouse keeper counted seven ships"


# --- fast: the parts, on real LanceDB and real files ---------------------------------------


def test_the_stage_reads_the_scenes_beside_the_picture_stages_in_its_own_pool():
    from heimdex_pipeline.pipeline.stages import STAGES

    (stage,) = [s for s in STAGES if s.asset == "transcripts"]
    assert stage.reads == ("scenes",) and stage.pool == "asr" and "asr" in stage.resources
    assert not stage.fails_video  # a transcript's failure never costs the video its pictures
    assert not any("transcripts" in s.reads for s in STAGES)  # nothing waits for it


def test_a_sentence_across_a_cut_is_split_at_the_cut_by_its_words():
    words = (Word(" the", 2.0, 2.2), Word(" seven", 2.3, 2.8), Word(" ships", 3.1, 3.6))
    scenes = [SceneSpan("a", 0, 0.0, 3.0), SceneSpan("b", 1, 3.0, 6.0)]
    first, second = lines_by_scene((Segment(2.0, 3.6, " the seven ships", words),), scenes)
    assert (first.scene_id, first.text, first.start_s, first.end_s) == ("a", "the seven", 2.0, 2.8)
    assert (second.scene_id, second.text, second.start_s, second.end_s) == ("b", "ships", 3.1, 3.6)
    assert first.sentence == second.sentence == "the seven ships"  # a phrase matches both sides
    # Whisper joins speech across the silences VAD removed: a long pause starts a new sentence
    far = (Word(" stop", 1.0, 1.4), Word(" go", 4.0, 4.3))
    lines = lines_by_scene((Segment(1.0, 4.3, " stop go", far),), [SceneSpan("a", 0, 0.0, 6.0)])
    assert [line.sentence for line in lines] == ["stop", "go"]


def test_the_query_words_are_marked_and_the_hit_plays_from_the_phrase():
    words = tuple(
        Word(f" {w}", 1.0 + n * 0.4, 1.3 + n * 0.4)
        for n, w in enumerate(["bring", "the", "purple", "umbrellas", "tomorrow"])
    )
    match = mark(words, "Purple umbrella", 1.0, 3.0, 2.5)
    assert match.marked == "bring the [purple] [umbrellas] tomorrow"  # stemmed, any case
    assert match.start_s == pytest.approx(1.8) and match.end_s == pytest.approx(2.5)


def _line(video_id: str, n: int, text: str) -> dict:
    return {
        "line_id": f"{video_id}-s:{n:05d}",
        "video_id": video_id,
        "owner": "local",
        "scene_id": f"{video_id}-s",
        "scene_index": 0,
        "scene_start_s": 0.0,
        "scene_end_s": 10.0,
        "segment_index": n,
        "start_s": 1.0,
        "end_s": 2.0,
        "text": text,
        "line_text": text,
        "words": json.dumps([[f" {w}", 1.0, 2.0] for w in text.split()]),
        "language": "en",
        "model_id": "m",
    }


def test_fresh_lines_are_found_at_once_without_rebuilding_the_full_text_index(tmp_path):
    store = open_stores(load_settings({"HEIMDEX_HOME": str(tmp_path)}), check_schema=False)
    table = transcripts_table(store.vectors, "m")  # the index is built on the empty table
    schema = transcripts_schema()
    replace_lines_of_videos(
        table, ["v1"], pa.Table.from_pylist([_line("v1", 0, "the cats are running home")], schema)
    )
    assert [r["video_id"] for r in speech_ranking(table, "cat run", None, 10)] == ["v1"]
    assert speech_ranking(table, '"running home"', None, 10)
    assert not speech_ranking(table, '"home running"', None, 10)  # a phrase keeps its order
    replace_lines_of_videos(  # after the index holds rows, fresh ones still count
        table, ["v2"], pa.Table.from_pylist([_line("v2", 0, "a fresh lighthouse")], schema)
    )
    table.optimize()
    replace_lines_of_videos(
        table, ["v3"], pa.Table.from_pylist([_line("v3", 0, "another lighthouse")], schema)
    )
    assert {r["video_id"] for r in speech_ranking(table, "lighthouse", None, 10)} == {"v2", "v3"}
    replace_lines_of_videos(  # a re-run replaces the video's lines in one commit
        table, ["v3"], pa.Table.from_pylist([_line("v3", 0, "a red kite")], schema)
    )
    assert {r["video_id"] for r in speech_ranking(table, "lighthouse", None, 10)} == {"v2"}
    replace_lines_of_videos(table, ["v2"], pa.Table.from_pylist([], schema))
    assert not speech_ranking(table, "lighthouse", None, 10)
    assert speech_ranking(table, "kite", "video_id IN ('v1')", 10) == []  # a pre-filter


def test_a_decoding_loop_is_told_from_speech():
    assert repeats_itself("end of the " * 69)  # what tiny.en heard under noise in the corpus
    assert repeats_itself("end of the " * 12)
    said = "The magician pulled a rabbit from his hat, and then a dove, and then a second rabbit."
    assert not repeats_itself(said)
    for brief in ("Thank you. " * 5, "No, no, " * 10, "left, right, " * 5):
        assert not repeats_itself(brief)  # repeats that compress well, too short for a loop
    assert not repeats_itself("감사합니다. " * 5)


def test_no_audio_and_a_broken_track_are_told_apart(tmp_path):
    pictures = pattern_pictures(2)
    silent = write_clip(tmp_path / "mute.mp4", pictures, [1.0], 2.0, [], audio=False)
    with pytest.raises(NoAudioError):
        read_audio(silent.path)
    with_track = write_clip(tmp_path / "quiet.mp4", pictures, [1.0], 2.0, [], noise="noise")
    assert read_audio(with_track.path).duration_s == pytest.approx(2.0, abs=0.1)
    break_audio(Path(with_track.path), tmp_path / "broken.mkv")
    with pytest.raises(AudioUnreadableError, match="invalid data"):
        read_audio(tmp_path / "broken.mkv")


def test_the_asr_model_setting_is_checked_before_anything_runs(tmp_path, make_settings):
    assert resolve_asr_model("off") is None
    packaged = resolve_asr_model("tiny.en")
    assert packaged is not None and (Path(packaged.folder) / "model.bin").is_file()
    assert packaged.model_id.startswith("tiny_en_")
    for bad in (str(tmp_path / "nowhere"), "not-a-model"):
        with pytest.raises(AsrLoadError, match="HEIMDEX_ASR_MODEL"):
            resolve_asr_model(bad)
    with pytest.raises(SettingsError, match="HEIMDEX_ASR_LANGUAGE"):
        load_settings({"HEIMDEX_HOME": str(tmp_path), "HEIMDEX_ASR_LANGUAGE": "english!"})
    assert load_settings({"HEIMDEX_ASR_LANGUAGE": "auto"}).asr_language is None

    settings = make_settings(HEIMDEX_ASR_MODEL=str(tmp_path / "nowhere"))
    with pytest.raises(AsrLoadError, match="HEIMDEX_ASR_MODEL"):
        index_paths([tmp_path], settings)
    assert not (settings.home / "catalog.sqlite").exists()  # nothing was touched


def test_a_new_speech_model_serves_only_once_every_indexed_video_has_a_transcript(make_settings):
    settings = make_settings()
    upgrade(settings.database_url)
    stores = open_stores(settings)
    with stores.catalog.session() as session:
        for video_id in ("a", "b"):
            session.add(
                Video(id=video_id, owner="local", source_uri=f"file:///{video_id}", title=video_id)
            )
            session.flush()
            set_state(session, video_id, VideoState.INDEXED)
            record_transcript(session, video_id, "old", "tiny.en", status="transcribed")
        activate_complete_models(session)
        assert active_speech_model(session).model_id == "old"
        record_transcript(session, "a", "new", "small", status="transcribed")
        activate_complete_models(session)
        assert active_speech_model(session).model_id == "old"  # "b" has none by "new" yet
        record_transcript(session, "b", "new", "small", status="no speech")
        activate_complete_models(session)
        assert active_speech_model(session).model_id == "new"


# --- slow: one small library, indexed once with the packaged tiny.en ----------------------


def _clips(folder: Path, sample_videos: Path) -> dict[str, Path]:
    pictures = pattern_pictures(3, seed=7)
    spoken = write_clip(
        folder / "interview.mp4",
        pictures,
        [3.0, 6.0],
        8.0,
        [Utterance(KEEPER, 0.5), Utterance(PURPLE, 6.3, "en-us", 150)],
    )
    (folder / "truth.json").write_text(json.dumps(spoken.utterances))
    break_audio(Path(spoken.path), folder / "garbled.mkv")
    return {
        "interview.mp4": Path(spoken.path),
        "garbled.mkv": folder / "garbled.mkv",
        "counter.mp4": sample_videos / "counter.mp4",
        "video_with_failing_audio.mp4": sample_videos / "video_with_failing_audio.mp4",
    }


@pytest.fixture(scope="module")
def spoken_library(sample_videos, tmp_path_factory, tiny_clip):
    folder = tmp_path_factory.mktemp("spoken")
    clips = _clips(folder, sample_videos)
    env = suite_env(folder / "home", tiny_clip, HEIMDEX_ASR_MODEL="tiny.en")
    outcomes = {
        Path(o.source).name: o for o in index_paths(list(clips.values()), load_settings(env))
    }
    truth = json.loads((folder / "truth.json").read_text())
    return env, outcomes, {t["text"]: t for t in truth}


def _cli(env: dict, monkeypatch, capsys, *args: str) -> dict:
    from heimdex_pipeline.cli.main import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_every_clip_is_indexed_and_its_transcript_says_what_became_of_its_audio(spoken_library):
    env, outcomes, _ = spoken_library
    assert {name: o.state for name, o in outcomes.items()} == dict.fromkeys(outcomes, "indexed")
    stores = stores_of(load_settings(env))
    with stores.catalog.session() as session:
        rows = {r.video_id: r for r in session.query(VideoTranscript)}
    status = {name: rows[o.video_id].status for name, o in outcomes.items()}
    assert status == {
        "interview.mp4": "transcribed",
        "garbled.mkv": "audio unreadable",
        "counter.mp4": "no audio",
        # its mp3 track decodes cleanly in PyAV (it broke moviepy's reader past its end, not
        # in this cut); what it holds is a hum and then silence
        "video_with_failing_audio.mp4": "no speech",
    }
    assert "invalid data" in rows[outcomes["garbled.mkv"].video_id].reason
    spoken = rows[outcomes["interview.mp4"].video_id]
    assert spoken.language == "en" and spoken.word_count >= 10 and spoken.speech_s > 2
    assert 0 < spoken.real_time_factor < 2
    instance = dagster_instance(load_settings(env))
    for outcome in outcomes.values():
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("transcripts"), asset_partitions=[outcome.video_id]
            ),
            limit=1,
        ).records
        metadata = record.asset_materialization.metadata
        assert metadata["model"].value == "tiny.en"
        assert {"language", "speech_s", "words", "real_time_factor"} <= set(metadata)
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("transcripts"), "transcript_lines_inside_their_scenes")]
        )
        assert check, "the check ran"


@pytest.mark.slow
def test_a_phrase_said_in_a_clip_finds_it_and_plays_from_the_words(
    spoken_library, monkeypatch, capsys
):
    env, outcomes, truth = spoken_library
    spoken = outcomes["interview.mp4"]
    said = truth[PURPLE]
    for mode in ("speech", "hybrid"):
        answer = _cli(env, monkeypatch, capsys, "search", "purple umbrella", "--mode", mode)
        first = answer["hits"][0]
        assert first["video_id"] == spoken.video_id and first["scene_index"] == 2, mode
        assert "speech" in first["matched"]
        assert "[purple] [umbrella]" in first["speech"]["marked"].lower()
        assert said["start_s"] <= first["play_from_s"] <= said["end_s"], (first, said)
        assert first["video_url"].endswith(f"#t={first['play_from_s']:.3f}")
    # a phrase across the cut at 3 s is found on both sides of it, each playing from its words
    answer = _cli(env, monkeypatch, capsys, "search", '"seven ships"', "--mode", "speech")
    assert [h["scene_index"] for h in answer["hits"]] == [0, 1]
    assert answer["hits"][1]["play_from_s"] >= 3.0
    detail = _cli(env, monkeypatch, capsys, "video", spoken.video_id)
    assert detail["transcript"]["status"] == "transcribed"
    lines = [line["text"].lower() for scene in detail["scenes"] for line in scene["transcript"]]
    assert any("lighthouse" in line for line in lines) and any("umbrella" in line for line in lines)
    for scene in detail["scenes"]:
        for line in scene["transcript"]:
            assert scene["start_s"] <= line["start_s"] <= line["end_s"] <= scene["end_s"]


@pytest.mark.slow
def test_the_api_searches_by_mode_and_shows_each_scene_s_transcript(spoken_library):
    from heimdex_pipeline.serve.app import create_app

    env, outcomes, _ = spoken_library
    client = TestClient(create_app(load_settings(env)))
    spoken = outcomes["interview.mp4"]
    answer = client.get("/api/search", params={"q": "lighthouse keeper", "mode": "speech"}).json()
    assert answer["mode"] == "speech" and answer["speech_model"].startswith("tiny_en_")
    assert answer["hits"][0]["video_id"] == spoken.video_id
    assert answer["hits"][0]["speech"]["start_s"] == pytest.approx(0.5, abs=0.6)
    visual = client.get("/api/search", params={"q": "lighthouse", "mode": "visual"}).json()
    assert all(hit["speech"] is None and hit["visual_score"] is not None for hit in visual["hits"])
    assert client.get("/api/search", params={"q": "x", "mode": "loud"}).status_code == 422
    only_other = client.get(
        "/api/search",
        params={"q": "lighthouse", "mode": "speech", "video": outcomes["counter.mp4"].video_id},
    ).json()
    assert only_other["hits"] == []  # the video filter is a pre-filter
    detail = client.get(f"/api/videos/{outcomes['garbled.mkv'].video_id}").json()
    assert detail["transcript"]["status"] == "audio unreadable"
    assert detail["state"] == "indexed"


@pytest.mark.slow
def test_on_s3_a_deleted_video_leaves_no_transcript_row_or_object(
    s3_env, tiny_clip, tmp_path, sample_videos
):
    clip = write_clip(
        tmp_path / "short.mp4", pattern_pictures(2), [2.0], 4.0, [Utterance(PURPLE, 0.5)]
    )
    env = suite_env(tmp_path / "home", tiny_clip, HEIMDEX_ASR_MODEL="tiny.en", **s3_env)
    from minio import Minio

    bucket = s3_env["HEIMDEX_OBJECT_STORE"].split("/")[2]
    Minio(s3_env["HEIMDEX_S3_ENDPOINT"], "testing", "testing", secure=False).make_bucket(bucket)
    settings = load_settings(env)
    stores = stores_of(settings)
    (outcome,) = index_paths([Path(clip.path)], settings)
    assert outcome.state == "indexed"
    (name,) = transcript_tables(stores.vectors)
    table = stores.vectors.db.open_table(name)
    where = f"video_id = '{outcome.video_id}'"
    assert table.count_rows(where) > 0
    assert list(stores.objects.list(f"transcripts/{outcome.video_id}/"))
    assert delete_videos([outcome.video_id], settings) == []
    assert stores.vectors.db.open_table(name).count_rows(where) == 0
    assert not list(stores.objects.list(f"transcripts/{outcome.video_id}/"))
    with stores.catalog.session() as session:
        assert not session.query(VideoTranscript).filter_by(video_id=outcome.video_id).all()


@pytest.mark.slow
def test_the_page_finds_the_words_plays_from_them_and_shows_the_transcript(spoken_library):
    import socket

    import uvicorn
    from playwright.sync_api import expect

    from heimdex_pipeline.serve.app import create_app

    env, outcomes, truth = spoken_library
    spoken = outcomes["interview.mp4"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(load_settings(env)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=5):
                break
        except OSError:
            assert time.monotonic() < deadline, "heimdex serve did not come up"
            time.sleep(0.3)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with chromium_page() as page:
            page.goto(base + "/")
            page.fill("#q", "purple umbrella")
            page.click("button[type=submit]")
            first = page.locator(".hit").first
            expect(first).to_be_visible(timeout=30_000)
            expect(first.locator(".title")).to_have_text("interview.mp4")
            expect(first.locator(".said mark")).to_have_count(2)
            expect(first.locator(".said")).to_contain_text("umbrella")
            page.screenshot(path=str(ARTIFACTS / "speech-search.png"))
            first.click()
            page.wait_for_url(f"**/videos/{spoken.video_id}?t=*")
            page.wait_for_function(
                "document.querySelector('#player').readyState >= 1 && "
                "document.querySelector('#player').currentTime > 0"
            )
            current = page.evaluate("document.querySelector('#player').currentTime")
            said = truth[PURPLE]
            assert said["start_s"] - 0.1 <= current <= said["end_s"], (current, said)
            lines = page.locator(".transcript .line")
            assert lines.count() >= 3
            expect(page.locator(".transcript .line.speaking")).to_contain_text("umbrella")
            page.screenshot(path=str(ARTIFACTS / "speech-video-page.png"))
            lines.first.click()  # each line seeks to where it is said
            page.wait_for_function("document.querySelector('#player').currentTime < 3")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.slow
def test_re_indexing_replaces_the_transcript_and_delete_leaves_nothing_of_it(
    spoken_library, tmp_path
):
    # last in the module: it deletes the spoken clip the other tests search for
    env, outcomes, _ = spoken_library
    settings = load_settings(env)
    stores = stores_of(settings)
    spoken = outcomes["interview.mp4"]
    table = stores.vectors.db.open_table(transcript_tables(stores.vectors)[0])
    where = f"video_id = '{spoken.video_id}'"
    before = sorted(r["line_id"] for r in table.search().where(where).to_list())
    assert before
    index_paths([Path(spoken.source)], settings)
    table = stores.vectors.db.open_table(table.name)
    after = sorted(r["line_id"] for r in table.search().where(where).to_list())
    assert after == before  # replaced, not doubled
    assert delete_videos([spoken.video_id], settings) == []
    table = stores.vectors.db.open_table(table.name)  # a handle sees the version it opened
    assert table.count_rows(where) == 0
    assert not list(stores.objects.list(f"transcripts/{spoken.video_id}/"))
    with stores.catalog.session() as session:
        assert not session.query(VideoTranscript).filter_by(video_id=spoken.video_id).all()
