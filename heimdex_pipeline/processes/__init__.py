"""Child processes that hold a model for the runs (CLIP, Whisper): the one protocol they share."""
