"""The shot detectors by name (no media imports: the settings read these)."""

DETECTORS = ("content", "fused", "transnetv2")
DEFAULT_DETECTOR = "fused"  # chosen on the generated corpus and the sample clips: see README
