from .base import Executor, Outcome
from .docker import DockerExecutor
from .local import LocalExecutor

__all__ = ["Executor", "Outcome", "LocalExecutor", "DockerExecutor"]
