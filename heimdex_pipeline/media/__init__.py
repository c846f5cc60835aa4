"""Pure media code: functions over video files that know nothing of Dagster."""
