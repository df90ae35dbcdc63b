"""dind: Diffusion in Diffusion for block discrete diffusion language models."""

__version__ = "0.1.0"
