"""llbkit: compile container images to BuildKit LLB and build them on buildkitd workers."""

__version__ = "0.1.0"
