"""Faces into people, incrementally: each new face joins the person whose centre (the mean of
their faces) is nearest, if it is near enough, else starts a new person. People already made
keep their ids (and names); only the new faces are placed, so a refresh costs the new faces
times the people, never a regrouping of the library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JOIN_DISTANCE = 0.5  # a face this close to a person's centre is that person (dlib: 0.6 = same)


@dataclass
class Centres:
    """Each person's centre and face count (rows in the same order as `ids`)."""

    ids: list[int]
    centres: np.ndarray  # float32 (people, dim)
    counts: np.ndarray  # int64 (people,)

    @classmethod
    def empty(cls, dim: int) -> Centres:
        return cls([], np.zeros((0, dim), np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class Placement:
    """Where each new face went: an existing person's id, or the index of a new person."""

    person: list[int | None]  # existing person id, or None for a new one
    new_person: list[int | None]  # for faces with person None: which new person (0, 1, ...)
    new_centres: np.ndarray
    new_counts: np.ndarray


def _distances(faces: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Euclidean distances, faces by centres, as one matrix product."""
    squared = (faces**2).sum(1)[:, None] + (centres**2).sum(1)[None, :] - 2.0 * faces @ centres.T
    return np.sqrt(np.maximum(squared, 0.0))


def place(
    faces: np.ndarray, known: Centres, join_distance: float = JOIN_DISTANCE
) -> tuple[Placement, Centres]:
    """Place each face (rows of `faces`, in order); the centres afterwards (known people first,
    then the new ones, whose ids are left to the caller). The known people's centres are
    compared as they were before this batch (all at once); the new people of the batch as they
    grow, one face at a time."""
    faces = np.asarray(faces, dtype=np.float32).reshape(-1, known.centres.shape[1])
    n_known = len(known.ids)
    to_known = np.full(len(faces), np.inf, np.float32)
    nearest_known = np.zeros(len(faces), np.int64)
    if n_known and len(faces):
        gaps = _distances(faces, known.centres.astype(np.float32))
        nearest_known = gaps.argmin(1)
        to_known = gaps[np.arange(len(faces)), nearest_known]
    centres = np.empty((n_known + len(faces), faces.shape[1]), np.float32)
    centres[:n_known] = known.centres
    counts = np.zeros(n_known + len(faces), np.int64)
    counts[:n_known] = known.counts
    size = n_known  # the new people of the batch are centres[n_known:size]
    person: list[int | None] = []
    new_person: list[int | None] = []
    for number, face in enumerate(faces):
        target, gap = int(nearest_known[number]), float(to_known[number])
        if size > n_known:
            fresh = np.linalg.norm(centres[n_known:size] - face, axis=1)
            best = int(fresh.argmin())
            if fresh[best] < gap:
                target, gap = n_known + best, float(fresh[best])
        if gap >= join_distance:
            target, size = size, size + 1
            centres[target], counts[target] = face, 0
        counts[target] += 1
        centres[target] += (face - centres[target]) / counts[target]
        is_known = target < n_known
        person.append(known.ids[target] if is_known else None)
        new_person.append(None if is_known else target - n_known)
    after = Centres(list(known.ids), centres[:size].copy(), counts[:size].copy())
    placement = Placement(
        person, new_person, after.centres[n_known:].copy(), after.counts[n_known:].copy()
    )
    return placement, after


def centre_of(faces: np.ndarray) -> np.ndarray:
    return np.asarray(faces, dtype=np.float32).mean(axis=0)
