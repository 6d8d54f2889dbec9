"""The worker child process for integration tests: a free metrics port, settings via env."""

from __future__ import annotations

from pathlib import Path

from tariffmon.settings import Settings
from tariffmon.workerproc import WorkerProcess as _WorkerProcess
from tariffmon.workerproc import child_env
from tests.kafka_helpers import free_port


def settings_env(settings: Settings, metrics_port: int = 0) -> dict[str, str]:
    """TARIFFMON_* variables that make a child process load the same settings."""
    return child_env(settings, metrics_port=metrics_port)


class WorkerProcess(_WorkerProcess):
    """A ``tariffmon worker`` child on a free metrics port, logging at INFO."""

    def __init__(self, settings: Settings, log_path: Path, metrics_port: int | None = None
                 ) -> None:
        super().__init__(settings, log_path, metrics_port or free_port())
