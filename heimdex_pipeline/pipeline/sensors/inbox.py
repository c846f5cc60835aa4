"""The inbox sensor: videos put under `incoming/` in the object store are indexed.

The inbox sensor reads one page of the listing a tick, after its cursor, and wraps around at the
end: a tick costs the same with 100 or 100,000 videos in the inbox, and every key is looked at
once a cycle. What the page holds is compared with the catalog rows in the same key range:

- a new key (or one whose video was deleted) is registered, gets its partition, and is indexed;
- a known key whose content changed (ETag / size and mtime) is indexed again as a new version;
- a row whose key is gone from the listing is deleted, with everything made from it.

Whose library a new key goes in: `incoming/<user>/…` is that user's; a key right under
`incoming/` (or anywhere, while there are no users) is the default owner's. A key under a
folder that names no user is skipped, and the tick's log says why.
"""

import hashlib
import itertools
import json
import statistics
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import dagster as dg

from heimdex_pipeline.catalog.models import Video, VideoState, as_utc
from heimdex_pipeline.catalog.users import user_names
from heimdex_pipeline.catalog.video_ids import file_name_of, is_video_name, video_id_for
from heimdex_pipeline.catalog.videos import (
    IN_PROGRESS,
    Registration,
    register_videos,
    videos_with_store_keys,
)
from heimdex_pipeline.library.lifecycle import delete_video
from heimdex_pipeline.pipeline.partitions import videos
from heimdex_pipeline.pipeline.resources import (
    CatalogResource,
    ObjectStoreResource,
    VectorStoreResource,
    stores_from,
)
from heimdex_pipeline.pipeline.runs import contiguous_batches, run_request
from heimdex_pipeline.pipeline.tags import INDEX_JOB, RUN_KEY_TAG
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.keys import INCOMING_PREFIX, incoming_folder
from heimdex_pipeline.stores.objects import InvalidKeyError, ObjectInfo, validate_key

# One S3 LIST request a tick. With 30 s between ticks a listing of 10,000 keys is read through
# in 10 ticks; new keys that sort after every known one are found on the next tick.
KEYS_PER_TICK = 1000
# Run keys asked for in one query (an IN list PostgreSQL plans quickly).
RUN_KEYS_PER_QUERY = 500
# A video whose run was asked for (by a tick, or by the failed-runs sensor's re-run) is asked
# for again only when no run came in this long: the asker's run may still be on its way, and a
# second request under another run key would run the video twice.
REASK_AFTER_S = 60
# The daemon creates a tick's runs before the tick ends (1.5-4 s each here, more on a busy day):
# a tick asks for as many as it made in this long at the pace it made the last tick's runs, so
# that a tick stays under 10 s with the sensor's own few seconds.
RUN_CREATION_BUDGET_S = 6.0
# A tick that could not measure the pace (it asked for one run) takes it this much faster, so
# the cap grows back once the daemon is quick again.
UNMEASURED_PACE = 0.8


@dataclass(frozen=True)
class InboxCursor:
    """Where the next tick's page starts (None: from the beginning), the run keys the last tick
    asked for, and the seconds the daemon took to create one run (None: not measured yet)."""

    after: str | None = None
    asked: tuple[str, ...] = ()
    run_pace_s: float | None = None

    @classmethod
    def parse(cls, raw: str | None) -> "InboxCursor":
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            pace = data.get("run_pace_s")
            return cls(
                after=data.get("after"),
                asked=tuple(str(k) for k in data.get("asked", ())),
                run_pace_s=float(pace) if pace is not None else None,
            )
        except (ValueError, AttributeError, TypeError):
            return cls()

    def dump(self) -> str:
        return json.dumps(
            {"after": self.after, "asked": list(self.asked), "run_pace_s": self.run_pace_s}
        )


@dataclass(frozen=True)
class InboxChanges:
    """What one page of the inbox listing means for the catalog, and the runs it asks for."""

    to_index: list[tuple[str, ObjectInfo]]  # (video id, object) new or changed, in key order
    removed: list[str]  # video ids whose source is gone
    next_cursor: InboxCursor
    scanned: int
    refused: list[str] = field(default_factory=list)  # keys skipped, with why
    new_partitions: list[str] = field(default_factory=list)  # to add before the runs start
    requests: list[dg.RunRequest] = field(default_factory=list)


def owner_of_key(key: str, users: set[str], default_owner: str) -> str | None:
    """Whose library a key under incoming/ belongs in (None: no one's, see the module)."""
    folder = incoming_folder(key)
    if folder is None or not users:
        return default_owner
    if folder in users or folder == default_owner:
        return folder
    return None


def scan_inbox(
    stores: Stores,
    cursor: InboxCursor,
    instance: dg.DagsterInstance,
    limit: int = KEYS_PER_TICK,
    default_owner: str = "local",
    batch_size: int = 25,
    max_runs: int | None = None,
) -> InboxChanges:
    """Compare one page of `incoming/` with the catalog; register what is new and plan its runs
    (in one catalog transaction, with one question to Dagster of each kind: a page of 1,000
    keys costs about what a page of 10 does). A page that would need more than `max_runs` runs
    stops before the key that would pass it, and the next tick starts there."""
    page = stores.objects.list_page(INCOMING_PREFIX, limit=limit, start_after=cursor.after)
    upto = page.objects[-1].key if page.next_token is not None else None
    listed: dict[str, ObjectInfo] = {}
    refused: list[str] = []
    for info in page.objects:
        if not is_video_name(info.key):
            continue
        try:  # S3 takes keys with `..`, empty parts, backslashes or control characters
            validate_key(info.key)
        except InvalidKeyError as error:
            refused.append(f"skipped {error}; rename or remove the object")
            continue
        listed[info.key] = info
    to_index: list[tuple[str, ObjectInfo]] = []
    wanted: list[Registration] = []
    now = datetime.now(UTC)
    with stores.catalog.session() as session:
        rows = videos_with_store_keys(session, INCOMING_PREFIX, cursor.after, upto)
        users = user_names(session)
        started = runs_started(
            instance,
            [r.run_key for k, r in rows.items() if k in listed and _awaits_its_run(r)],
        )
        uris = {  # the keys that need a run
            k: stores.objects.uri(k)
            for k, info in listed.items()
            if k not in rows or _needs_run(rows[k], info, started, now)
        }
        ids = {k: rows[k].id if k in rows else video_id_for(uri) for k, uri in uris.items()}
        # one question for the page: which videos have a partition (they run alone), which get
        # one now (batched); the cap below and the runs planned after it read the same answer
        has_partition = (
            instance.get_existing_dynamic_partitions(videos.name, list(ids.values()))
            if ids
            else set()
        )
        fresh = known = 0  # videos planned: new partitions (batched), known ones (alone)
        cut: str | None = None
        for key, info in listed.items():
            if key not in ids:
                continue
            row = rows.get(key)
            owner = owner_of_key(key, users, default_owner)
            if owner is None:
                refused.append(
                    f"skipped {key}: {incoming_folder(key)!r} is no user. Put a user's videos "
                    f"under incoming/<user>/ (`heimdex users list`), or right under incoming/ "
                    f"for {default_owner}'s library"
                )
                continue
            if row is not None and _is_live(row) and row.owner != owner:
                refused.append(
                    f"skipped {key}: its video {row.id} is {row.owner}'s, and the key now "
                    f"names {owner}'s library; `heimdex delete {row.id}` to index it for {owner}"
                )
                continue
            video_id = ids[key]
            is_new = video_id not in has_partition
            runs = -(-(fresh + is_new) // batch_size) + known + (not is_new)
            if max_runs is not None and runs > max_runs:
                cut = key
                break
            fresh, known = fresh + is_new, known + (not is_new)
            uri = uris[key]
            wanted.append(Registration(video_id, uri, file_name_of(uri), owner, key))
            to_index.append((video_id, info))
        registered = register_videos(session, wanted)
        versions = {v: f"{info.version}.{_life(registered[v])}" for v, info in to_index}
        new_partitions, by_video = _run_requests(versions, has_partition, batch_size)
        for video_id, request in by_video.items():  # asked for: a later tick can tell
            registered[video_id].run_key = request.run_key
        gone = [
            row
            for key, row in rows.items()
            if key not in listed and _is_live(row) and (cut is None or key < cut)
        ]
    # Never delete on a listing alone: the object must be missing when asked for directly.
    removed = [row.id for row in gone if not stores.objects.exists(row.store_key or "")]
    next_cursor = InboxCursor(after=page.next_token)  # None at the end: start over next tick
    if cut is not None:  # the rest of the page waits for the next tick
        keys = [info.key for info in page.objects]
        next_cursor = InboxCursor(
            after=keys[keys.index(cut) - 1] if keys.index(cut) else cursor.after
        )
    requests = list({id(r): r for r in by_video.values()}.values())
    return InboxChanges(
        to_index, removed, next_cursor, len(page.objects), refused, new_partitions, requests
    )


def run_pace(instance: dg.DagsterInstance, cursor: InboxCursor) -> float | None:
    """Seconds the daemon took to create each of the last tick's runs: the median gap between
    their creation times (one clock, the daemon's; a run made long before, whose key was asked
    again, is left out), averaged with the pace before; None while nothing was measured."""
    previous = cursor.run_pace_s
    made: list[float] = []
    if len(cursor.asked) >= 2:  # one run has no gap to measure
        records = instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: list(cursor.asked)}))
        made = sorted(r.create_timestamp.timestamp() for r in records)
    gaps = [b - a for a, b in itertools.pairwise(made) if b - a < REASK_AFTER_S]
    if not gaps:
        return previous * UNMEASURED_PACE if previous is not None else None
    measured = statistics.median(gaps)
    return measured if previous is None else (measured + previous) / 2


def runs_within_budget(
    pace_s: float | None, most: int, budget_s: float = RUN_CREATION_BUDGET_S
) -> int:
    """Runs a tick asks for: as many as the daemon creates in `budget_s` at `pace_s` a run,
    at least one and at most `most` (`most` while the pace is unknown)."""
    if pace_s is None or pace_s <= 0:
        return most
    return max(1, min(most, int(budget_s / pace_s)))


def _awaits_its_run(row: Video) -> bool:
    return row.state is VideoState.UPLOADING and bool(row.run_key)


def _needs_run(row: Video, info: ObjectInfo, started: set[str], now: datetime) -> bool:
    """A known key needs a run when its video was deleted, when its content changed since it was
    read, when it was registered but no run asked for, or when a run was asked for and none
    came in REASK_AFTER_S (a tick that did not complete); `started` holds the run keys of this
    page that have a run."""
    if row.state is VideoState.DELETED:
        return True
    if row.state is VideoState.UPLOADING:
        if not row.run_key:  # registered (an upload, a CLI add) but no run asked for yet
            return True
        waited = (now - as_utc(row.updated_at)).total_seconds()
        return row.run_key not in started and waited >= REASK_AFTER_S
    if row.state in IN_PROGRESS:
        return False
    return row.source_version is not None and row.source_version != info.version


def runs_started(instance: dg.DagsterInstance, run_keys: list[str | None]) -> set[str]:
    """Which of these run keys have a run, asked a few hundred at a time (not a query each)."""
    wanted = sorted({k for k in run_keys if k})
    found: set[str] = set()
    for at in range(0, len(wanted), RUN_KEYS_PER_QUERY):
        chunk = wanted[at : at + RUN_KEYS_PER_QUERY]
        records = instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: chunk}))
        found |= {r.dagster_run.tags.get(RUN_KEY_TAG, "") for r in records}
    return found


def _is_live(row: Video) -> bool:
    return row.state is not VideoState.DELETED


def _life(row: Video) -> str:
    """When this life of the video began: a deleted video back is registered anew, and its run
    key must differ from its last life's even for the same bytes (Dagster runs a sensor's run
    key once, ever)."""
    return as_utc(row.created_at).strftime("%Y%m%d%H%M%S%f")


def _run_requests(
    version: dict[str, str], has_partition: set[str], batch_size: int
) -> tuple[list[str], dict[str, dg.RunRequest]]:
    """New partitions (added together, so contiguous) run in ranges of `batch_size`; a known
    partition (a changed file) runs alone. `version` holds each video's content version and
    life, in listing order; run keys carry them, so asking twice starts one run. Returns the
    new partitions and each video's request."""
    ids = list(version)
    new_ids = [v for v in ids if v not in has_partition]
    by_video: dict[str, dg.RunRequest] = {}
    for chunk in contiguous_batches(new_ids, new_ids, batch_size):
        if len(chunk) == 1:
            run_key = f"{chunk[0]}@{version[chunk[0]]}"
        else:
            versions = "|".join(f"{v}@{version[v]}" for v in chunk)
            digest = hashlib.sha256(versions.encode()).hexdigest()[:16]
            run_key = f"{chunk[0]}..{chunk[-1]}@{digest}"
        by_video |= dict.fromkeys(chunk, run_request(chunk, run_key))
    for video_id in ids:
        if video_id not in by_video:
            by_video[video_id] = run_request([video_id], f"{video_id}@{version[video_id]}")
    return new_ids, by_video


def build_inbox_sensor(
    batch_size: int,
    interval_s: int = 30,
    default_owner: str = "local",
    runs_per_tick: int | None = None,
) -> dg.SensorDefinition:
    """The inbox sensor, starting at most `batch_size` new videos per run and `runs_per_tick`
    runs per tick (fewer when the daemon made the last tick's runs slowly; no limit when None),
    every `interval_s` seconds; keys outside a user's folder go to `default_owner`."""

    @dg.sensor(
        name="inbox_sensor",
        job_name=INDEX_JOB,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Reads {KEYS_PER_TICK} keys of `{INCOMING_PREFIX}` a tick (wrapping around): "
        f"new videos are registered and indexed, {batch_size} to a run and at most "
        f"{runs_per_tick or 'any number of'} runs a tick (fewer while the daemon creates "
        f"runs slowly: {RUN_CREATION_BUDGET_S:.0f} s of them a tick); changed ones are "
        "indexed again; removed ones are deleted with everything made from them. "
        "`incoming/<user>/` is that user's library; a key right under incoming/ is "
        f"{default_owner}'s. Upload elsewhere, then move the finished file in.",
    )
    def inbox_sensor(
        context: dg.SensorEvaluationContext,
        catalog: CatalogResource,
        objects: ObjectStoreResource,
        vectors: VectorStoreResource,
    ) -> dg.SensorResult:
        stores = stores_from(catalog, objects, vectors)
        cursor = InboxCursor.parse(context.cursor)
        pace = max_runs = None
        if runs_per_tick:
            pace = run_pace(context.instance, cursor)
            max_runs = runs_within_budget(pace, runs_per_tick)
        changes = scan_inbox(
            stores,
            cursor,
            context.instance,
            default_owner=default_owner,
            batch_size=batch_size,
            max_runs=max_runs,
        )
        for line in changes.refused:
            context.log.warning(line)
        for video_id in changes.removed:
            delete_video(video_id, stores)
        requests = changes.requests
        partition_requests = []
        if changes.new_partitions:
            partition_requests.append(videos.build_add_request(changes.new_partitions))
        if changes.removed:
            partition_requests.append(videos.build_delete_request(changes.removed))
        summary = (
            f"{changes.scanned} keys read, {len(changes.to_index)} to index, "
            f"{len(changes.removed)} removed, {len(changes.refused)} refused"
        )
        budget = (
            "" if pace is None else f" (at most {max_runs}: the last runs took {pace:.1f} s each)"
        )
        context.log.info(f"{summary}; {len(requests)} runs asked for{budget}")
        next_cursor = replace(
            changes.next_cursor,
            asked=tuple(r.run_key for r in requests if r.run_key),
            run_pace_s=pace,
        )
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=partition_requests,
            cursor=next_cursor.dump(),
            skip_reason=None if requests or changes.removed else f"nothing new ({summary})",
        )

    return inbox_sensor
