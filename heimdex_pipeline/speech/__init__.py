"""Speech: Whisper (faster-whisper) loading and its worker process, transcripts and their lines
per scene."""
