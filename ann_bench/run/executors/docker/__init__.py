"""The Docker executor and what builds its images."""
