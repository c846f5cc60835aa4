"""people: the faces of the whole library grouped into people, refreshed as new faces arrive.

Incremental: a refresh places only the faces no person holds yet (each with the nearest
person, or as a new one), so people keep their ids and names; `heimdex people merge` and
`forget` correct it by hand.
"""

import dagster as dg
from sqlalchemy import func, select

from heimdex_pipeline.catalog.models import Face, Person
from heimdex_pipeline.library.people import refresh_people
from heimdex_pipeline.pipeline.library_assets.library_stats import REFRESH
from heimdex_pipeline.pipeline.resources import (
    CatalogResource,
    ObjectStoreResource,
    VectorStoreResource,
    stores_from,
)


@dg.asset(
    deps=[dg.AssetKey("faces")],
    group_name="library",
    kinds={"python"},
    automation_condition=REFRESH,
    description="Every face placed in a person: new faces join the nearest person (under "
    "0.5 from their centre) or start one. People keep their ids and names.",
)
def people(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource,
) -> dg.MaterializeResult:
    refresh = refresh_people(stores_from(catalog, objects, vectors))
    context.log.info(
        f"placed {refresh.placed} faces ({refresh.joined} with known people, "
        f"{refresh.new_people} new people); {refresh.people} people, {refresh.faces} faces"
    )
    return dg.MaterializeResult(
        metadata={
            "faces_placed": refresh.placed,
            "joined_known_people": refresh.joined,
            "new_people": refresh.new_people,
            "people": refresh.people,
            "faces": refresh.faces,
            "seconds": dg.MetadataValue.float(refresh.seconds),
        }
    )


@dg.asset_check(asset=people, blocking=False)
def every_face_has_one_person(catalog: CatalogResource) -> dg.AssetCheckResult:
    """No face is left unplaced, no person is left without faces, and every person's face
    count is their faces'."""
    with catalog.catalog().session() as session:
        unplaced = session.scalar(select(func.count()).where(Face.person_id.is_(None))) or 0
        actual = dict(
            session.execute(
                select(Face.person_id, func.count()).where(Face.person_id.is_not(None))
                .group_by(Face.person_id)
            ).all()
        )  # fmt: skip
        stated = dict(session.execute(select(Person.id, Person.face_count)).all())
    empty = [p for p in stated if p not in actual]
    wrong = [p for p, count in actual.items() if stated.get(p) != count]
    problems = []
    if unplaced:
        problems.append(f"{unplaced} faces are in no person")
    if empty:
        problems.append(f"{len(empty)} people have no face")
    if wrong:
        problems.append(f"{len(wrong)} people's face counts are wrong")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"people": len(stated), "unplaced_faces": unplaced},
        description="; ".join(problems) or None,
    )
