"""Faces: dlib's packaged models (detection, landmarks, the 128-d encoder), the faces of a scene
from its kept frames, and grouping faces into people. Pure code: no store, no Dagster."""
