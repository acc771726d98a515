"""Deployment: NIR import and export (:mod:`spikeforge.deploy.nir`)."""

from spikeforge.deploy.nir import (
    NIRExportWarning,
    NIRGraphError,
    NIRGraphModule,
    export_nir,
    from_nir,
    to_nir,
)
from spikeforge.deploy.runs import export_run, import_run  # also registers model "nir"

__all__ = ["NIRExportWarning", "NIRGraphError", "NIRGraphModule", "export_nir", "export_run",
           "from_nir", "import_run", "to_nir"]
