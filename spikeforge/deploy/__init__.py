"""Deployment: NIR import and export (:mod:`spikeforge.deploy.nir`, docs/nir.md), and
lowering a trained SNN to event-driven stages with the event-driven simulator
(:mod:`spikeforge.deploy.lower`, docs/event-driven.md)."""

from spikeforge.deploy.lower import DeploymentError, LoweredNetwork, lower_model
from spikeforge.deploy.nir import (
    NIRExportWarning,
    NIRGraphError,
    NIRGraphModule,
    export_nir,
    from_nir,
    to_nir,
)
from spikeforge.deploy.runs import export_run, import_run  # also registers model "nir"

__all__ = ["DeploymentError", "LoweredNetwork", "NIRExportWarning", "NIRGraphError",
           "NIRGraphModule", "export_nir", "export_run", "from_nir", "import_run",
           "lower_model", "to_nir"]
