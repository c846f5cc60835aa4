"""Issue 17's figures, with dlib's packaged models on this CPU.

  detection  the frames the faces stage scans in the sample clips that show faces (the kept
             frames, as `heimdex index` keeps them), against faces labelled by hand in
             `faces_labels.json` (heads at least 40 px tall): recall, false faces per 100 frames.
             `--sheets DIR` writes each clip's scanned frames with the detections drawn (to label).
  identity   distances between the face_recognition sdist's test photos (same / different
             person), then a video corpus built from them (slow zooms on photos, cuts, shots
             with no face) indexed with faces on, searched by a photo that is in no clip:
             precision over the first k (k = that person's scenes), and never a faceless scene.
  speed      `heimdex index` on the sample clips, HEIMDEX_FACES=off against on, alternating.
  people     the `people` refresh at 10k and 100k generated faces (all new, then 1% new).

.venv/bin/python benchmarks/faces.py detection|identity|speed|people
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, save  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "videos"
LABELS = Path(__file__).with_name("faces_labels.json")
CACHE = Path.home() / ".cache" / "heimdex-faces"
SDIST = "face_recognition==1.3.0"  # MIT; its tests/test_images are the photos used here
FACE_CLIPS = (
    "carphone_pristine.mp4",
    "movienet-test1.mp4",
    "goldeneye-vfr-drop3.mp4",
    "chaplin.mp4",
    "issue-195-aspect-ratio.mp4",
)


def _settings(home: Path, faces: str = "on"):
    from heimdex_pipeline.settings import load_settings

    return load_settings(
        {
            "HEIMDEX_HOME": str(home),
            "HEIMDEX_CLIP_PRETRAINED": "random",
            "HEIMDEX_ASR_MODEL": "off",
            "HEIMDEX_FACES": faces,
        }
    )


def scanned_frames(stores, video_id: str, per_scene: int):
    """The frames the faces stage scans for a video: (time, RGB image)."""
    from heimdex_pipeline.catalog.videos import scenes_of
    from heimdex_pipeline.faces.scan import Frame, spread
    from heimdex_pipeline.media.detect import SceneSpan
    from heimdex_pipeline.media.thumbnail import samples_in
    from heimdex_pipeline.stores.bundles import unpack_samples
    from heimdex_pipeline.stores.keys import candidates_key

    samples = unpack_samples(stores.objects.get_bytes(candidates_key(video_id)))
    with stores.catalog.session() as session:
        spans = [SceneSpan(r.index, r.start_s, r.end_s) for r in scenes_of(session, video_id)]
    frames = []
    for span in spans:
        chosen = spread([Frame(s.time_s, s.jpeg) for s in samples_in(samples, span)], per_scene)
        frames += [(f.time_s, Image.open(io.BytesIO(f.jpeg)).convert("RGB")) for f in chosen]
    return frames


def detection(args) -> dict:
    from heimdex_pipeline.faces.model import FaceModel
    from heimdex_pipeline.pipeline.local_runs import index_paths
    from heimdex_pipeline.stores import open_stores

    labels = json.loads(LABELS.read_text()) if LABELS.exists() else {}
    with tempfile.TemporaryDirectory() as folder:
        settings = _settings(Path(folder), faces="off")  # only the kept frames are needed
        outcomes = index_paths([VIDEOS / name for name in FACE_CLIPS], settings)
        stores = open_stores(settings)
        model = FaceModel()
        per_clip, found_all, labelled_all, false_all, frames_all = {}, 0, 0, 0, 0
        seconds = []
        for outcome in outcomes:
            name = Path(outcome.source).name
            frames = scanned_frames(stores, outcome.video_id, model.settings.frames_per_scene)
            truth = labels.get(name, {})
            rows = []
            for number, (time_s, image) in enumerate(frames):
                started = time.perf_counter()
                faces = model.find(np.asarray(image))
                seconds.append(time.perf_counter() - started)
                key = f"{time_s:.3f}"
                rows.append(
                    {"time_s": key, "found": len(faces), "heights": [f.box.h for f in faces]}
                )
                if args.sheets:
                    _draw(Path(args.sheets), name, number, key, image, faces)
                if key in truth:
                    labelled = truth[key]
                    found_all += min(len(faces), labelled)
                    labelled_all += labelled
                    false_all += max(0, len(faces) - labelled)
                    frames_all += 1
            per_clip[name] = rows
    result = {
        "machine": machine(),
        "frames_labelled": frames_all,
        "faces_labelled": labelled_all,
        "recall": round(found_all / labelled_all, 3) if labelled_all else None,
        "false_faces_per_100_frames": round(100 * false_all / frames_all, 2)
        if frames_all
        else None,
        "seconds_per_frame_median": round(statistics.median(seconds), 3),
        "per_clip": per_clip,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "per_clip"}, indent=1))
    return result


def _draw(folder: Path, clip: str, number: int, key: str, image, faces) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    picture = image.copy()
    pen = ImageDraw.Draw(picture)
    for face in faces:
        b = face.box
        pen.rectangle((b.x, b.y, b.x + b.w, b.y + b.h), outline=(255, 0, 0), width=2)
    pen.text((4, 4), f"{clip} t={key}", fill=(255, 255, 0))
    picture.save(folder / f"{Path(clip).stem}-{number:03d}.jpg")


def sdist_photos() -> dict[str, Path]:
    """The face_recognition sdist's test photos, fetched from PyPI into ~/.cache (never into
    the repository)."""
    import subprocess

    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / "face_recognition-1.3.0.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             SDIST, "-d", str(CACHE), "-q"],
            check=True,
        )  # fmt: skip
    photos = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if "/tests/test_images/" in member.name and member.name.endswith(".jpg"):
                target = CACHE / Path(member.name).name
                if not target.exists():
                    target.write_bytes(tar.extractfile(member).read())
                photos[target.stem] = target
    return photos


def _zoom_shot(photo: Image.Image, frames: int, size=(480, 360), mirror=False):
    """A slow zoom (1.0 → 1.25) into a photo, as a documentary shows a still."""
    if mirror:
        photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    photo = photo.convert("RGB")
    out = []
    for n in range(frames):
        zoom = 1.0 + 0.25 * n / max(1, frames - 1)
        w, h = photo.size
        cw, ch = w / zoom, h / zoom
        box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
        frame = photo.crop(tuple(round(v) for v in box))
        frame.thumbnail(size)
        canvas = Image.new("RGB", size, (20, 20, 20))
        canvas.paste(frame, ((size[0] - frame.width) // 2, (size[1] - frame.height) // 2))
        out.append(canvas)
    return out


def _faceless_shot(frames: int, start: int, size=(480, 360)):
    import av

    out = []
    with av.open(str(VIDEOS / "bikes.mp4")) as container:
        for n, frame in enumerate(container.decode(video=0)):
            if n >= start + frames:
                break
            if n >= start:
                out.append(frame.to_image().resize(size))
    return out


def _write(path: Path, pictures) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        for picture in pictures:
            for packet in stream.encode(av.VideoFrame.from_image(picture)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def identity(args) -> dict:
    from heimdex_pipeline.faces.model import FaceModel, distance
    from heimdex_pipeline.pipeline.local_runs import index_paths
    from heimdex_pipeline.search.searcher import Searcher
    from heimdex_pipeline.stores import open_stores

    photos = sdist_photos()
    model = FaceModel()
    descriptors = {}
    for name, path in sorted(photos.items()):
        found = model.find(np.asarray(Image.open(path).convert("RGB")), 20)
        if found:
            descriptors[name] = found[0].descriptor
    person = {name: name.split("_")[0].rstrip("0123456789") for name in descriptors}
    same, different = [], []
    names = sorted(descriptors)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            gap = float(distance(descriptors[a][None], descriptors[b])[0])
            (same if person[a] == person[b] else different).append(round(gap, 3))
    # the corpus: shots of photos (one of each person kept out of every clip, to search by)
    query = {"obama": "obama3"}
    plan = {
        "corpus-a.mp4": [("obama", False), (None, 0), ("biden", False)],
        "corpus-b.mp4": [(None, 60), ("obama2", False), (None, 120)],
        "corpus-c.mp4": [("biden", True), ("obama_partial_face", False), (None, 180)],
        "corpus-d.mp4": [(None, 30), (None, 90)],
    }
    shots: list[tuple[str, float, float, str | None]] = []  # clip, start, end, whose face
    with tempfile.TemporaryDirectory() as folder:
        clips = []
        for clip, plan_shots in plan.items():
            pictures = []
            for what, extra in plan_shots:
                start = len(pictures) / 25
                if what is None:
                    pictures += _faceless_shot(50, extra)
                else:
                    pictures += _zoom_shot(Image.open(photos[what]), 75, mirror=bool(extra))
                shots.append((clip, start, len(pictures) / 25, person.get(what) if what else None))
            _write(Path(folder) / clip, pictures)
            clips.append(Path(folder) / clip)
        settings = _settings(Path(folder) / "home")
        outcomes = index_paths(clips, settings)
        stores = open_stores(settings)
        ids = {o.video_id: Path(o.source).name for o in outcomes}
        from heimdex_pipeline.catalog.models import Scene

        with stores.catalog.session() as session:
            whose = {}  # scene id -> whose face its shot shows (by the scene's middle)
            for row in session.query(Scene).filter(Scene.video_id.in_(list(ids))):
                middle = (row.start_s + row.end_s) / 2
                for clip, start, end, who in shots:
                    if clip == ids[row.video_id] and start <= middle < end:
                        whose[row.id] = who
        searcher = Searcher(stores)
        searches = {}
        for who, photo in query.items():
            hits = searcher.search(face=photos[photo], limit=50).hits
            theirs = {scene for scene, owner in whose.items() if owner == who}
            k = len(theirs)
            first = [h.scene_id for h in hits[:k]]
            searches[who] = {
                "query_photo": photo,
                "their_scenes": k,
                "hits": len(hits),
                "precision_at_k": round(sum(s in theirs for s in first) / k, 3),
                "returned_all_theirs_first": set(first) == theirs,
                "faceless_scenes_returned": sum(whose.get(h.scene_id) is None for h in hits),
                "other_people_returned": sum(
                    whose.get(h.scene_id) not in (None, who) for h in hits
                ),
                "scenes_in_corpus": len(whose),
                "distances": [h.face.distance for h in hits],
            }
    result = {
        "machine": machine(),
        "photos": names,
        "same_person": {"n": len(same), "min": min(same), "max": max(same)} if same else None,
        "different_people": {"n": len(different), "min": min(different), "max": max(different)}
        if different
        else None,
        "search": searches,
    }
    print(json.dumps(result, indent=1))
    return result


def speed(args) -> dict:
    import subprocess

    from benchmarks._runs import heimdex_env, prepare_home

    clips = sorted(str(p) for p in VIDEOS.iterdir() if p.suffix in (".mp4", ".webm", ".mkv"))
    walls: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.repeats):
        for faces in ("off", "on"):
            with tempfile.TemporaryDirectory() as folder:
                home = Path(folder)
                env = heimdex_env(home, HEIMDEX_FACES=faces)
                prepare_home(home, env)
                started = time.perf_counter()
                subprocess.run(
                    [str(ROOT / ".venv/bin/heimdex"), "index", *clips, "--json"],
                    env=env, check=False, capture_output=True,
                )  # fmt: skip
                walls[faces].append(round(time.perf_counter() - started, 2))
                print(faces, walls[faces][-1], flush=True)
    ratios = [on / off for on, off in zip(walls["on"], walls["off"], strict=True)]
    result = {
        "machine": machine(),
        "clips": len(clips),
        "walls": walls,
        "median_off": statistics.median(walls["off"]),
        "median_on": statistics.median(walls["on"]),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
    }
    print(json.dumps(result, indent=1))
    return result


def people(args) -> dict:
    """The refresh at 10k and 100k faces: generated descriptors around 1 face per 20 people."""
    from heimdex_pipeline.catalog.models import Face, Scene, Video, VideoState
    from heimdex_pipeline.catalog.people import as_blob
    from heimdex_pipeline.library.people import refresh_people
    from heimdex_pipeline.stores import open_stores

    rng = np.random.default_rng(3)
    figures = {}
    for total in args.counts:
        with tempfile.TemporaryDirectory() as folder:
            stores = open_stores(_settings(Path(folder)))
            people_n = max(1, total // 20)
            centres = rng.normal(0, 1, (people_n, 128)).astype(np.float32)
            centres *= 0.6 / np.linalg.norm(centres, axis=1, keepdims=True) * 1.2

            def add(count: int, offset: int, stores=stores, people_n=people_n, centres=centres):
                with stores.catalog.session() as session:
                    videos = max(1, count // 100)
                    for v in range(videos):
                        vid = f"v{offset}-{v}"
                        session.add(Video(id=vid, owner="local", source_uri=f"/x/{vid}", title=vid,
                                          state=VideoState.INDEXED))  # fmt: skip
                        session.add(Scene(id=f"{vid}-s", video_id=vid, index=0, start_s=0,
                                          end_s=1))  # fmt: skip
                    session.flush()
                    who = rng.integers(0, people_n, count)
                    noise = rng.normal(0, 0.02, (count, 128)).astype(np.float32)
                    for n in range(count):
                        vid = f"v{offset}-{n % videos}"
                        session.add(Face(id=f"{vid}-f{offset}-{n}", video_id=vid,
                                         scene_id=f"{vid}-s", model_id="dlib_resnet_v1",
                                         time_s=0, x=0, y=0, w=40, h=40, frame_w=480,
                                         frame_h=270, crop_key="-",
                                         descriptor=as_blob(centres[who[n]] + noise[n]),
                                         ))  # fmt: skip

            add(total, 0)
            first = refresh_people(stores)
            add(total // 100, 1)
            incremental = refresh_people(stores)
            figures[total] = {
                "all_new": first.as_dict(),
                "one_percent_new": incremental.as_dict(),
                "generated_people": people_n,
            }
            print(total, json.dumps(figures[total]), flush=True)
    return {"machine": machine(), "refresh": figures}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    d = modes.add_parser("detection")
    d.add_argument("--sheets")
    modes.add_parser("identity")
    s = modes.add_parser("speed")
    s.add_argument("--repeats", type=int, default=3)
    p = modes.add_parser("people")
    p.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    result = {"detection": detection, "identity": identity, "speed": speed, "people": people}[
        args.mode
    ](args)
    save(f"faces_{args.mode}", result)


if __name__ == "__main__":
    main()
