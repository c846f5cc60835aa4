"""Search that serves a team: concurrent queries encoded together in one pass give what each
encoded alone gives, repeated ones come from the cache, and two `heimdex serve` replicas over
the same catalog, object store and LanceDB share nothing else: an upload through one is
searchable through the other once indexed. (Speed is measured in benchmarks/serve_latency.py;
no timing is asserted here.)"""

from __future__ import annotations

import json
import threading
import urllib.request

import numpy as np
import pytest

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import get_video
from heimdex_pipeline.clip.model import cpu_threads, load_clip
from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.search.encoding import QueryEncoder
from heimdex_pipeline.search.searcher import Searcher
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline_tests.conftest import (
    index_through_the_inbox,
    served,
    stores_of,
    suite_env,
)

WORDS = ["a red car", "two people talking", "bikes on a street", "a dog", "night city", "sea"]


def _together(count: int, work) -> list:
    """`work(n)` for n in range(count), all started at once from their own threads."""
    results: list = [None] * count
    start = threading.Barrier(count)

    def run(n: int) -> None:
        start.wait()
        results[n] = work(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_the_text_tower_on_the_texts_tokens_alone_gives_clips_own_features(tiny_clip):
    import torch

    from heimdex_pipeline.clip.model import _encode_trimmed, _trimmable

    encoder = load_clip(*tiny_clip)
    assert _trimmable(encoder._model)  # else the check below compares nothing
    texts = ["a dog", "two people talking in a red car at night on a wet street", "x"]
    tokens = encoder._tokenizer(texts)
    with torch.inference_mode():
        full = encoder._model.encode_text(tokens).numpy()
        trimmed = _encode_trimmed(encoder._model, tokens).numpy()
    assert trimmed.shape == full.shape
    np.testing.assert_allclose(trimmed, full, atol=1e-5)


def test_a_replica_keeps_torch_to_the_threads_it_is_given(monkeypatch):
    """`OMP_NUM_THREADS` is a replica's share of the cores (Operating Heimdex); torch's own
    default would take every core whatever it says."""
    import os

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu_threads() == 1
    for unset in ("", "0", "two"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert cpu_threads() == (os.cpu_count() or 1)


def test_queries_encoded_together_get_the_vectors_each_gets_alone(tiny_clip):
    encoder = load_clip(*tiny_clip)
    alone = {text: encoder.encode_texts([text])[0] for text in WORDS}
    batched = QueryEncoder(encoder, window_s=0.05, cache_size=0)
    texts = [WORDS[n % len(WORDS)] + " " * (n // len(WORDS)) for n in range(24)]
    encoded = _together(len(texts), lambda n: batched.text(texts[n]))
    assert max(e.batch_size for e in encoded) > 1, "no two queries shared a pass"
    for text, result in zip(texts, encoded, strict=True):
        np.testing.assert_allclose(result.vector, alone[text.strip()], atol=1e-5)
    cached = QueryEncoder(encoder)
    first, again = cached.text("a  red car "), cached.text("a red car")
    assert not first.cached and again.cached and again.batch_size == 0
    np.testing.assert_array_equal(first.vector, again.vector)


@pytest.mark.slow
def test_concurrent_searches_answer_what_one_at_a_time_answers(make_settings, sample_videos):
    settings = make_settings()
    (outcome,) = index_paths([sample_videos / "bikes.mp4"], settings)
    assert outcome.state == "indexed", outcome.error
    queries = [*WORDS, *WORDS]
    one_by_one = [
        [hit.scene_id for hit in Searcher(stores_of(settings)).search(text=q, mode="visual").hits]
        for q in queries
    ]
    shared = Searcher(stores_of(settings))
    answers = _together(len(queries), lambda n: shared.search(text=queries[n], mode="visual"))
    assert [[hit.scene_id for hit in a.hits] for a in answers] == one_by_one
    assert one_by_one[0], "nothing found"
    sizes = [a.timing["batch_size"] for a in answers if not a.timing["cached"]]
    assert sizes and max(sizes) > 1, sizes  # they did share a pass
    again = shared.search(text=queries[0], mode="visual")
    assert again.timing["cached"] and [h.scene_id for h in again.hits] == one_by_one[0]


def _get(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=60) as answer:
        return json.loads(answer.read())


@pytest.mark.slow
def test_two_replicas_over_the_same_stores_give_the_same_answers(
    tmp_path, tiny_clip, sample_videos, postgres_url, s3_env
):
    env = suite_env(tmp_path / "home", tiny_clip, HEIMDEX_DATABASE_URL=postgres_url, **s3_env)
    settings = load_settings(env)
    stores = stores_of(settings)
    with served(settings) as first, served(settings) as second:
        boundary = "heimdex-replica"
        data = (sample_videos / "realshort.mp4").read_bytes()
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.mp4"\r\n'
                "Content-Type: video/mp4\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            first + "/api/videos",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            uploaded = json.loads(answer.read())
        video_id = uploaded["video_id"]
        assert {v["video_id"] for v in _get(second, "/api/videos")["videos"]} == {video_id}
        index_through_the_inbox(settings)  # the inbox sensor and a run, as the daemon
        with stores.catalog.session() as session:
            assert get_video(session, video_id).state is VideoState.INDEXED
        for words in WORDS[:3]:
            path = f"/api/search?mode=visual&limit=5&q={urllib.request.quote(words)}"
            one, other = _get(first, path), _get(second, path)
            assert one["hits"] and {h["video_id"] for h in one["hits"]} == {video_id}
            strip = lambda answer: [  # noqa: E731 (URLs are presigned anew for each answer)
                (h["scene_id"], h["score"]) for h in answer["hits"]
            ]
            assert strip(one) == strip(other)
        detail = _get(second, f"/api/videos/{video_id}")
        assert detail["state"] == "indexed" and detail["scenes"]
