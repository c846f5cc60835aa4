-- Two databases on one server: the Heimdex catalog (POSTGRES_DB) and the Dagster instance.
CREATE DATABASE dagster;
