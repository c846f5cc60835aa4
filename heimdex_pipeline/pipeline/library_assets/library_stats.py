"""library_stats: the whole library at a glance, refreshed after videos are indexed.

The example of a library-wide asset: unpartitioned, it reads every `search_index` partition's
result through the stores, is refreshed by an automation condition (not a schedule) once a
batch of videos has changed the index, and carries a check that compares two stores.
"""

import dagster as dg

from heimdex_pipeline.catalog.videos import library_counts
from heimdex_pipeline.pipeline.resources import CatalogResource, VectorStoreResource
from heimdex_pipeline.stores.vectors import TABLE_PREFIX, table_stats

# After any video's search_index changed, once no run of it is in progress (a failed video's
# missing partition must not hold the refresh back, as `eager()` would).
REFRESH = (
    (
        dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~(dg.AutomationCondition.in_progress())
)


def gather(catalog: CatalogResource, vectors: VectorStoreResource) -> dict[str, object]:
    """The catalog's counts and every vector table's figures."""
    with catalog.catalog().session() as session:
        counts = library_counts(session)
    store = vectors.store()
    tables = {name: table_stats(store.open(name)) for name in store.scenes_tables()}
    return {**counts, "vector_tables": tables}


@dg.asset(
    deps=[dg.AssetKey("search_index")],
    group_name="library",
    kinds={"python"},
    automation_condition=REFRESH,
    description="Videos by state, scenes and hours indexed, and each vector table's rows, "
    "version and fragments (compaction is due when small fragments pile up).",
)
def library_stats(
    context: dg.AssetExecutionContext, catalog: CatalogResource, vectors: VectorStoreResource
) -> dg.MaterializeResult:
    stats = gather(catalog, vectors)
    states = stats["videos_by_state"]
    tables = stats["vector_tables"]
    context.log.info(f"{sum(states.values())} videos: {states}")
    return dg.MaterializeResult(
        metadata={
            "videos": sum(states.values()),
            **{f"videos_{state}": count for state, count in states.items()},
            "scenes_indexed": stats["scenes_indexed"],
            "hours_indexed": dg.MetadataValue.float(round(stats["hours_indexed"], 3)),
            "vector_tables": dg.MetadataValue.json(tables),
            "vector_rows": sum(t["rows"] for t in tables.values()),
            "small_fragments": sum(t["small_fragments"] for t in tables.values()),
        }
    )


@dg.asset_check(asset=library_stats, blocking=False)
def vector_rows_match_catalog(
    catalog: CatalogResource, vectors: VectorStoreResource
) -> dg.AssetCheckResult:
    """Every model's vector table holds exactly the scenes the catalog says it does (a row left
    behind by a delete, or a video missing from its table, fails this)."""
    stats = gather(catalog, vectors)
    expected = stats["vector_rows_by_model"]
    found = {
        name[len(TABLE_PREFIX) + 1 :]: figures["rows"]
        for name, figures in stats["vector_tables"].items()
    }
    wrong = {
        model: {"catalog": expected.get(model, 0), "table": found.get(model, 0)}
        for model in set(expected) | set(found)
        if expected.get(model, 0) != found.get(model, 0)
    }
    return dg.AssetCheckResult(
        passed=not wrong,
        metadata={
            "models": len(set(expected) | set(found)),
            "disagree": dg.MetadataValue.json(wrong),
        },
        description="; ".join(
            f"{m}: {w['catalog']} in the catalog, {w['table']} in the table"
            for m, w in wrong.items()
        )
        or None,
    )
