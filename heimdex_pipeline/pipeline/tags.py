"""Names Dagster shows and stores for Heimdex: jobs, run tags, and Dagster's own tags we read.

One module, so a tag is spelled once: the chain sets them, the sensors and `heimdex index`
read them, the UI shows them.
"""

INDEX_JOB = "index_video"
REEMBED_JOB = "reembed_videos"
PEOPLE_JOB = "refresh_people"

# Dagster's own tags of a run over partitions (one partition, or a range of them).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
RUN_KEY_TAG = "dagster/run_key"
WILL_RETRY_TAG = "dagster/will_retry"  # set by the instance on a failed run it will retry
# link a run and its re-execution (the retry daemon sets both)
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"
PARENT_RUN_ID_TAG = "dagster/parent_run_id"

# Runs tagged so (the reembed_videos job) leave a video as it was when its new embedding fails:
# it stays indexed under the model search serves, and the new model's table simply lacks it.
MODE_TAG = "heimdex/mode"
REEMBED_MODE = "reembed"
# Re-runs of the videos an outage failed carry their attempt and the failed run.
ATTEMPT_TAG = "heimdex/outage_rerun"  # 1 for the first re-run of videos an outage failed
RERUN_OF_TAG = "heimdex/rerun_of"
# Set on a failed run once the failed-runs sensor has dealt with its videos (shown in the UI).
HANDLED_TAG = "heimdex/after_failure"
LEFT_TO_RUN_RETRY = "left to Dagster's run retry"
# Which process on which host runs a run `heimdex index` started (to reap it if it vanished).
HOST_TAG, PID_TAG = "heimdex/host", "heimdex/pid"

# A failed run's failure metadata names the videos an outage failed, for the failed-runs sensor.
OUTAGE_VIDEOS = "outage_videos"
FAILED_VIDEOS = "failed_videos"
