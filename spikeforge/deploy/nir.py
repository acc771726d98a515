"""NIR interchange, both ways: :func:`to_nir` / :func:`export_nir` (equations and targets
in :mod:`spikeforge.deploy.nir_export`) and :func:`from_nir` (conventions in
:mod:`spikeforge.deploy.nir_import`); the modules NIR primitives run as, and the graph
executor, in :mod:`spikeforge.deploy.graph`. User guide: docs/nir.md.
"""

from spikeforge.deploy.graph import (
    Delay,
    Integrator,
    LeakyIntegrator,
    NIRFlatten,
    NIRGraphError,
    NIRGraphModule,
    Scale,
    SumPool2d,
    Threshold,
)
from spikeforge.deploy.nir_export import NIRExportWarning, export_nir, to_nir
from spikeforge.deploy.nir_import import CONVENTIONS, from_nir, read_nir

__all__ = ["CONVENTIONS", "Delay", "Integrator", "LeakyIntegrator", "NIRExportWarning",
           "NIRFlatten", "NIRGraphError", "NIRGraphModule", "Scale", "SumPool2d", "Threshold",
           "export_nir", "from_nir", "read_nir", "to_nir"]
