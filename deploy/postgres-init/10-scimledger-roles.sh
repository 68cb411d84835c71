#!/bin/sh
# Run once by the postgres image, when its data volume is first initialised (/docker-entrypoint-initdb.d):
# the schema owner that migrations run as, the server's least-privilege role, and the database the owner owns
# (README "Least privilege"; compose.yaml passes both passwords). `scimledger serve` then migrates as the owner
# (SCIMLEDGER_MIGRATE_URL), which grants scimledger_app what schema.sql section 7 lists, and serves as
# scimledger_app (DATABASE_URL).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner_password="$SCIMLEDGER_OWNER_PASSWORD" \
    -v app_password="$SCIMLEDGER_APP_PASSWORD" <<'SQL'
CREATE ROLE scimledger_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE scimledger_app LOGIN PASSWORD :'app_password';
CREATE DATABASE scimledger OWNER scimledger_owner;
SQL
