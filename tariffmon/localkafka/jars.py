"""The broker's jars: Maven copies ``kafka_2.13`` and its dependencies into a cache folder.

``tariffmon/defaults/kafka/pom.xml`` (package data) names the Kafka and log4j2 versions.  The
folder carries a stamp with the pom's hash so that changing the pom (a Kafka upgrade) refetches
into an empty folder instead of leaving two Kafka versions on one class path.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

from tariffmon.errors import BrokerError

log = logging.getLogger(__name__)

#: The file in the jars folder (local_broker.libs_dir) holding the hash of the pom they came from.
STAMP_NAME = ".pom.sha256"
#: The jar whose presence says the broker itself is there.
BROKER_JAR_GLOB = "kafka_2.13-*.jar"


def _pom_hash(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_present(libs_dir: Path, pom: Path | None = None) -> bool:
    """Whether ``libs_dir`` holds the broker's jars (fetched from ``pom`` when given)."""
    if not libs_dir.is_dir() or not any(libs_dir.glob(BROKER_JAR_GLOB)):
        return False
    if pom is None or not pom.is_file():
        return True
    stamp = libs_dir / STAMP_NAME
    # jars without a stamp were copied by hand or by an older setup: trust them
    return not stamp.is_file() or stamp.read_text().strip() == _pom_hash(pom)


def fetch_jars(libs_dir: Path, pom: Path, *, mvn: str = "mvn", timeout_s: float = 900.0) -> None:
    """Run Maven to copy the broker's jars from ``pom`` into ``libs_dir`` (replacing it)."""
    if not pom.is_file():
        raise BrokerError(f"cannot fetch the Kafka jars: {pom} does not exist")
    mvn_path = shutil.which(mvn)
    if mvn_path is None:
        raise BrokerError(
            f"cannot fetch the Kafka jars: Maven ({mvn!r}) is not on PATH "
            "(Debian: apt-get install maven)"
        )
    if libs_dir.exists():
        shutil.rmtree(libs_dir)
    cmd = [
        mvn_path, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
        f"-Dkafka.libs={libs_dir}",
    ]
    log.info("fetching the Kafka jars: %s", " ".join(cmd))
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise BrokerError(
            f"Maven did not finish fetching the Kafka jars within {timeout_s:.0f} s"
        ) from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise BrokerError(
            f"Maven failed (exit {done.returncode}) fetching the Kafka jars with "
            f"{' '.join(cmd)}:\n{tail}"
        )
    if not any(libs_dir.glob(BROKER_JAR_GLOB)):
        raise BrokerError(f"Maven ran but {libs_dir} holds no {BROKER_JAR_GLOB}")
    (libs_dir / STAMP_NAME).write_text(_pom_hash(pom) + "\n")


def ensure_jars(libs_dir: Path, pom: Path, *, mvn: str = "mvn") -> bool:
    """Fetch the jars unless they are there already; returns True when Maven ran."""
    if jars_present(libs_dir, pom):
        return False
    fetch_jars(libs_dir, pom, mvn=mvn)
    return True
