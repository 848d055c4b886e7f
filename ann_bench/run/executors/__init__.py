from .base import Executor, Outcome
from .docker.executor import DockerExecutor
from .local import LocalExecutor

__all__ = ["Executor", "Outcome", "LocalExecutor", "DockerExecutor"]
