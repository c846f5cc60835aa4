"""Find scenes by what is said in them: the active speech model's full-text table (BM25 with an
English stemmer; words in quotes are a phrase), the best line per scene, and the query's words
marked in it. Only videos `indexed` now are returned; their transcripts are searchable as soon
as the transcripts step has committed them (LanceDB searches rows its index has not folded in
yet by a flat scan beside it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from heimdex_pipeline.catalog.videos import active_speech_model
from heimdex_pipeline.speech.transcript import Word, words_from_json
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.transcripts import transcripts_table_name

WORD = re.compile(r"[\w']+", re.UNICODE)
PHRASE = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class MarkedWord:
    text: str
    start_s: float
    end_s: float
    matched: bool


@dataclass(frozen=True)
class SpeechMatch:
    """Why a hit matched by speech: the line, the query's words in it marked, where they are."""

    text: str
    marked: str  # the line with the query's words in [brackets]
    start_s: float  # where the matched words start (the line's start if none is marked)
    end_s: float
    line_start_s: float
    line_end_s: float
    score: float  # BM25
    words: list[MarkedWord] = field(default_factory=list)


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)  # pure Python, ~1 ms a word: asked once per word


def stems(text: str) -> list[str]:
    """The words of `text` as the full-text index sees them: lower case, English stems."""
    words = [w.lower().strip("'") for w in WORD.findall(text)]
    return [_stem(w) for w in words if w]


def matched_count(words_json: str, wanted: set[str]) -> int:
    """How many of a line's words are the query's (the side of a cut holding more of them)."""
    import json

    return sum(
        bool(mine) and all(s in wanted for s in mine)
        for mine in (stems(text) for text, _, _ in json.loads(words_json))
    )


def parse_query(text: str) -> tuple[list[str], str]:
    """The phrases (in double quotes) and the loose words of a query."""
    phrases = [p.strip() for p in PHRASE.findall(text) if WORD.search(p)]
    loose = " ".join(WORD.findall(PHRASE.sub(" ", text)))
    return phrases, loose


def full_text_query(text: str):
    """A LanceDB full-text query: every phrase must match (as a phrase), loose words rank."""
    from lancedb.query import BooleanQuery, MatchQuery, Occur, PhraseQuery

    phrases, loose = parse_query(text)
    parts = [(Occur.MUST, PhraseQuery(" ".join(WORD.findall(p)), "text")) for p in phrases]
    if loose:
        parts.append((Occur.SHOULD if phrases else Occur.MUST, MatchQuery(loose, "text")))
    if not parts:
        return None
    if len(parts) == 1 and not phrases:
        return parts[0][1]
    return BooleanQuery(parts)


def mark(words: tuple[Word, ...], query: str, line_start: float, line_end: float, score: float):
    """The line with the query's words marked; it plays from the first of the longest run of
    consecutive matched words (the phrase, when the query is one)."""
    wanted = set(stems(query))
    flags = []
    for word in words:
        mine = stems(word.text)
        flags.append(bool(mine) and all(s in wanted for s in mine))
    best_start, best_len, run_start = None, 0, None
    for index, flag in enumerate([*flags, False]):
        if flag and run_start is None:
            run_start = index
        elif not flag and run_start is not None:
            if index - run_start > best_len:
                best_start, best_len = run_start, index - run_start
            run_start = None
    if best_start is None:
        start, end = line_start, line_end
    else:
        start, end = words[best_start].start_s, words[best_start + best_len - 1].end_s
    marked = "".join(
        (f"{w.text[: len(w.text) - len(w.text.lstrip())]}[{w.text.strip()}]" if f else w.text)
        for w, f in zip(words, flags, strict=True)
    ).strip()
    return SpeechMatch(
        text="".join(w.text for w in words).strip(),
        marked=marked,
        start_s=round(start, 3),
        end_s=round(end, 3),
        line_start_s=round(line_start, 3),
        line_end_s=round(line_end, 3),
        score=round(score, 4),
        words=[
            MarkedWord(w.text.strip(), round(w.start_s, 3), round(w.end_s, 3), f)
            for w, f in zip(words, flags, strict=True)
        ],
    )


def speech_table(stores: Stores):
    """The active speech model's table, or None when no transcript is searchable yet."""
    with stores.catalog.reading() as session:
        model = active_speech_model(session)
        model_id = model.model_id if model is not None else None
    if model_id is None:
        return None, None
    try:
        return stores.vectors.reader(transcripts_table_name(model_id)), model_id
    except LookupError:
        return None, model_id


def speech_ranking(table, text: str, where: str | None, fetch: int) -> list[dict]:
    """The best line per scene, best scene first, at most `fetch` lines asked of LanceDB."""
    query = full_text_query(text)
    if query is None:
        return []
    builder = table.search(query, query_type="fts").select(
        [
            "line_id",
            "video_id",
            "scene_id",
            "scene_index",
            "scene_start_s",
            "scene_end_s",
            "start_s",
            "end_s",
            "text",
            "words",
        ]
    )
    if where:
        builder = builder.where(where, prefilter=True)
    rows = builder.limit(fetch).to_list()
    phrases, loose = parse_query(text)
    wanted = set(stems(" ".join([*phrases, loose])))
    best: dict[str, dict] = {}
    for row in rows:  # a sentence across a cut: the side holding more of the query's words
        row["_marked"] = matched_count(row["words"], wanted)
        key = (row["_score"], row["_marked"])
        mine = best.get(row["scene_id"])
        if mine is None or key > (mine["_score"], mine["_marked"]):
            best[row["scene_id"]] = row
    return sorted(best.values(), key=lambda r: (-r["_score"], -r["_marked"]))


def match_of(row: dict, query: str) -> SpeechMatch:
    phrases, loose = parse_query(query)
    return mark(
        words_from_json(row["words"]),
        " ".join([*phrases, loose]),
        float(row["start_s"]),
        float(row["end_s"]),
        float(row["_score"]),
    )
