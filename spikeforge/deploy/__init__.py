"""Deployment: lowering a trained SNN to event-driven stages, and the event-driven simulator."""

from spikeforge.deploy.lower import DeploymentError, LoweredNetwork, lower_model

__all__ = ["DeploymentError", "LoweredNetwork", "lower_model"]
