"""The per-video vectors object: one Parquet file, the model identity in its schema metadata."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from heimdex_pipeline.clip.model import ModelIdentity

_IDENTITY = b"heimdex.model_identity"


def vectors_to_parquet(scene_ids: list[str], vectors: np.ndarray, identity: ModelIdentity) -> bytes:
    table = pa.table(
        {
            "scene_id": pa.array(scene_ids, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(vectors.astype(np.float32).reshape(-1)), identity.dim
            ),
        }
    )
    table = table.replace_schema_metadata({_IDENTITY: json.dumps(identity.as_dict()).encode()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def parquet_to_vectors(data: bytes) -> tuple[list[str], np.ndarray, ModelIdentity]:
    table = pq.read_table(io.BytesIO(data))
    meta = json.loads(table.schema.metadata[_IDENTITY])
    identity = ModelIdentity(
        model=meta["model"],
        pretrained=meta["pretrained"],
        dim=meta["dim"],
        weights_sha256=meta["weights_sha256"],
    )
    column = table.column("vector").combine_chunks()
    vectors = column.values.to_numpy(zero_copy_only=False).reshape(len(table), identity.dim)
    return table.column("scene_id").to_pylist(), vectors.astype(np.float32), identity
