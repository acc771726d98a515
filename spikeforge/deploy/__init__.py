"""Deployment: NIR import and export (:mod:`spikeforge.deploy.nir`)."""

from spikeforge.deploy.nir import (
    NIRExportWarning,
    NIRGraphError,
    NIRGraphModule,
    export_nir,
    from_nir,
    to_nir,
)

__all__ = ["NIRExportWarning", "NIRGraphError", "NIRGraphModule", "export_nir", "from_nir",
           "to_nir"]
