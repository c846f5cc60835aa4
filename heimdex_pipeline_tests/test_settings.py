import os
from pathlib import Path

import pytest

from heimdex_pipeline.settings import SettingsError, load_settings


def test_defaults_put_everything_under_the_home_with_no_server(tmp_path: Path):
    settings = load_settings({"HEIMDEX_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    assert settings.object_store == str(tmp_path / "objects")
    assert settings.lancedb_uri == str(tmp_path / "lancedb")
    assert settings.dagster_home == tmp_path / "dagster"
    assert settings.s3 is None
    assert (settings.clip_model, settings.clip_pretrained) == ("ViT-B-32", "laion2b_s34b_b79k")


def test_s3_locations_read_the_endpoint_settings(tmp_path: Path):
    settings = load_settings(
        {
            "HEIMDEX_HOME": str(tmp_path),
            "HEIMDEX_OBJECT_STORE": "s3://heimdex-media/prod",
            "HEIMDEX_S3_ENDPOINT": "minio:9000",
            "HEIMDEX_S3_SECURE": "false",
        }
    )
    assert settings.object_store_is_s3 and not settings.lancedb_is_s3
    assert settings.s3 is not None and settings.s3.endpoint == "minio:9000"
    assert settings.s3.secure is False and settings.s3.region == "us-east-1"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"HEIMDEX_DATABASE_URL": "not a url"}, "HEIMDEX_DATABASE_URL"),
        ({"HEIMDEX_DATABASE_URL": "mysql://x/y"}, "HEIMDEX_DATABASE_URL"),
        ({"HEIMDEX_OBJECT_STORE": "s3://bucket/x"}, "HEIMDEX_S3_ENDPOINT"),
        (
            {"HEIMDEX_OBJECT_STORE": "s3://ab/x", "HEIMDEX_S3_ENDPOINT": "h:1"},
            "HEIMDEX_OBJECT_STORE",
        ),
        ({"HEIMDEX_LANCEDB_URI": "gs://bucket/x"}, "HEIMDEX_LANCEDB_URI"),
        (
            {"HEIMDEX_OBJECT_STORE": "s3://bucket/x", "HEIMDEX_S3_ENDPOINT": "http://h:1"},
            "HEIMDEX_S3_ENDPOINT",
        ),
        (
            {
                "HEIMDEX_OBJECT_STORE": "s3://bucket/x",
                "HEIMDEX_S3_ENDPOINT": "h:1",
                "HEIMDEX_S3_SECURE": "maybe",
            },
            "HEIMDEX_S3_SECURE",
        ),
        ({"HEIMDEX_MAX_SCENE_S": "-3"}, "HEIMDEX_MAX_SCENE_S"),
        ({"HEIMDEX_SHOT_DETECTOR": "magic"}, "HEIMDEX_SHOT_DETECTOR"),
        ({"HEIMDEX_VECTOR_INDEX_MIN_ROWS": "lots"}, "HEIMDEX_VECTOR_INDEX_MIN_ROWS"),
    ],
)
def test_a_bad_value_fails_naming_its_variable(tmp_path: Path, env: dict, variable: str):
    with pytest.raises(SettingsError) as raised:
        load_settings({"HEIMDEX_HOME": str(tmp_path), **env})
    assert raised.value.variable == variable
    assert variable in str(raised.value)


@pytest.mark.slow  # a fresh interpreter
def test_the_code_location_refuses_to_load_with_a_bad_setting(tmp_path: Path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import heimdex_pipeline.definitions"],
        env={
            "HEIMDEX_HOME": str(tmp_path),
            "HEIMDEX_S3_SECURE": "x",
            "HEIMDEX_OBJECT_STORE": "s3://bucket/p",
            "HEIMDEX_S3_ENDPOINT": "h:9000",
            "PATH": "",
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "HEIMDEX_S3_SECURE" in result.stderr


def test_the_test_harness_refuses_to_reach_the_network():
    import socket

    with pytest.raises(AssertionError, match=r"huggingface\.co"):
        socket.getaddrinfo("huggingface.co", 443)
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_secrets_are_masked_in_every_repr_and_error(tmp_path: Path):
    from heimdex_pipeline.settings import Environment

    secret, token = "s3-secret-value-42", "api-token-value-42"
    env = {
        "HEIMDEX_HOME": str(tmp_path),
        "HEIMDEX_OBJECT_STORE": "s3://bucket/prefix",
        "HEIMDEX_S3_ENDPOINT": "h:9000",
        "HEIMDEX_S3_SECRET_KEY": secret,
        "HEIMDEX_API_TOKEN": token,
    }
    settings = load_settings(env)
    shown = " ".join(
        [repr(Environment.read(env)), repr(settings), repr(settings.s3), repr(settings.serve)]
    )
    assert secret not in shown and token not in shown
    assert settings.s3.secret_key.get_secret_value() == secret  # still usable by the clients
    assert settings.serve.token == token
    with pytest.raises(SettingsError) as raised:
        load_settings({**env, "HEIMDEX_S3_SECURE": "maybe"})
    assert secret not in str(raised.value) and token not in str(raised.value)
    assert "HEIMDEX_S3_SECURE='maybe'" in str(raised.value)


def test_settings_read_from_the_process_environment_like_a_mapping(tmp_path, monkeypatch):
    monkeypatch.setenv("HEIMDEX_HOME", str(tmp_path))
    monkeypatch.setenv("HEIMDEX_RUN_BATCH_SIZE", "7")
    monkeypatch.setenv("HEIMDEX_MAX_SCENE_S", "")  # empty means unset, as before
    from_process = load_settings()
    assert from_process.run_batch_size == 7 and from_process.max_scene_s == 30.0
    assert "HEIMDEX_RUN_BATCH_SIZE" in from_process.from_environment
    monkeypatch.setenv("HEIMDEX_RUN_BATCH_SIZE", "0")
    with pytest.raises(SettingsError, match="HEIMDEX_RUN_BATCH_SIZE"):
        load_settings()


@pytest.mark.slow  # Dagster runs `file` on the interpreter while it makes an instance
def test_opening_the_dagster_instance_leaves_the_environment_alone(tmp_path: Path, monkeypatch):
    """A command's instance is opened from its folder: DAGSTER_HOME is not put in os.environ,
    where every later test's settings (they read it) and every process started after it would
    find another test's instance."""
    from heimdex_pipeline.pipeline.instance import dagster_instance

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = load_settings({"HEIMDEX_HOME": str(tmp_path / "home")})
    instance = dagster_instance(settings)
    try:
        assert Path(instance.root_directory) == tmp_path / "home" / "dagster"
        assert "DAGSTER_HOME" not in os.environ
    finally:
        instance.dispose()


def test_a_given_mapping_is_read_alone_whatever_the_process_environment_holds(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DAGSTER_HOME", "/somewhere/else")
    monkeypatch.setenv("HEIMDEX_RUN_BATCH_SIZE", "3")
    monkeypatch.setenv("HEIMDEX_API_TOKEN", "from-the-process")
    settings = load_settings({"HEIMDEX_HOME": str(tmp_path)})
    assert settings.dagster_home == tmp_path / "dagster"
    assert settings.run_batch_size == 25 and settings.serve.token is None
    assert settings.from_environment == frozenset()
