"""ANN -> SNN conversion with threshold balancing and layer-wise calibration.

* :func:`convert`: a user's ``nn.Module`` (Conv/Linear/BatchNorm/ReLU, average and
  max pooling, residual adds, flatten) to an SNN of IF neurons with reset by
  subtraction, BatchNorm folded, thresholds from calibration data (max or the
  99.9th percentile), optional calibration (``light``, ``advanced``,
  ``advanced_bn``; Li et al. ICML 2021 and arXiv 2205.10121).
* :class:`QCFS`: the quantisation-clip-floor-shift activation (Bu et al., ICLR
  2022) to train an ANN that converts at low T.
* :func:`convert_run`: the same on a run directory of ``spikeforge train --ann``,
  writing a run directory ``spikeforge eval`` accepts.

Max pooling follows the chosen method's papers (average pooling in the ANN); a
max pool in a user's ANN is converted by spike gating (Rueckauer et al. 2017);
see :mod:`spikeforge.models.converted`.
"""

from spikeforge.convert.api import calibration_tensor, convert
from spikeforge.convert.calibrate import calibrate
from spikeforge.convert.run import convert_run
from spikeforge.convert.thresholds import estimate_thresholds, robust_max
from spikeforge.layers.qcfs import QCFS
from spikeforge.models.converted import (
    ConversionError,
    ConvertedIF,
    ConvertedSNN,
    SpikeMaxPool2d,
    ann_graph,
    fold_bn,
    snn_from_graph,
)

__all__ = [
    "QCFS", "ConversionError", "ConvertedIF", "ConvertedSNN", "SpikeMaxPool2d", "ann_graph",
    "calibrate", "calibration_tensor", "convert", "convert_run", "estimate_thresholds",
    "fold_bn", "robust_max", "snn_from_graph",
]
