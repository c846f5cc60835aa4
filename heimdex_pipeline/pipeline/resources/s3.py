"""S3Resource: how the object store and LanceDB reach an S3-compatible server (MinIO)."""

from __future__ import annotations

import dagster as dg

from heimdex_pipeline.settings import S3Settings, check_s3_endpoint


class S3Resource(dg.ConfigurableResource):
    """The S3 endpoint and credentials, set from the environment with dg.EnvVar (never literal
    values in the definitions). An empty endpoint means no S3 is configured."""

    endpoint: str = ""
    access_key: str = ""
    secret_key: str = ""
    secure: bool = True
    region: str = "us-east-1"

    def settings(self) -> S3Settings | None:
        """The one S3 configuration shape the clients take, or None."""
        if not self.endpoint:
            return None
        return S3Settings(
            endpoint=check_s3_endpoint(self.endpoint),
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
            region=self.region or "us-east-1",
        )
