"""Running a sweep: definitions, the plan, executors, the worker that times a library, estimates."""
