# scimledger: `scimledger serve` on 0.0.0.0:8000 as a non-root user, against an external PostgreSQL
# (DATABASE_URL, and SCIMLEDGER_MIGRATE_URL for the schema owner: README "Least privilege"). See compose.yaml
# for a complete setup and README "Operating it". Checked by tests/unit/test_deploy_files.py.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SCIMLEDGER_HOME=/var/lib/scimledger

# The data directory holds the checkpoint signing key made on first use (unless SCIMLEDGER_SIGNING_KEY is set).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/scimledger --create-home scimledger

WORKDIR /build
COPY pyproject.toml README.md schema.sql ./
COPY src ./src
COPY projections ./projections
RUN pip install . && rm -rf /build

WORKDIR /var/lib/scimledger
USER scimledger:scimledger
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
CMD ["scimledger", "serve", "--host", "0.0.0.0", "--port", "8000"]
