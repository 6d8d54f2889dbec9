# The tariffmon image: one image for every Python process of docker-compose.yml
# (topic creation, worker, tick producer, headline producer), run as `tariffmon <command>`.
#   docker build -t tariffmon .
#   docker run --rm tariffmon tariffmon --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies and code first, settings last: editing config/tariffmon.toml does not
# reinstall.  The package carries the files it needs (classifier rules: tariffmon/defaults/).
# constraints.txt pins every runtime dependency to the version the tests ran with (CI
# installs with the same file; scripts/freeze_constraints.py writes it).
COPY pyproject.toml README.md constraints.txt ./
COPY tariffmon ./tariffmon
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin tariffmon \
    && mkdir -p /var/lib/tariffmon/faust \
    && chown -R tariffmon /var/lib/tariffmon

COPY config/tariffmon.toml ./config/tariffmon.toml

# The working directory /app holds the settings file tariffmon looks for there
# (config/tariffmon.toml; TARIFFMON_CONFIG names it explicitly); what the worker writes goes
# to the volume.  Compose adds the addresses (TARIFFMON_KAFKA__BOOTSTRAP_SERVERS ...).
ENV TARIFFMON_CONFIG=/app/config/tariffmon.toml \
    TARIFFMON_WORKER__DATA_DIR=/var/lib/tariffmon/faust \
    TARIFFMON_METRICS__HOST=0.0.0.0

USER tariffmon
VOLUME ["/var/lib/tariffmon"]
EXPOSE 9464 9465

CMD ["tariffmon", "--help"]
