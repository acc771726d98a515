#!/usr/bin/env bash
# Install spikeforge with its test extras into the active Python environment,
# then the peer frameworks the interoperability tests compare against.
set -euo pipefail
cd "$(dirname "$0")/.."
# The constraints file pins torch==2.13.0 (the local CPU build) so that no
# dependency can pull a multi-GB CUDA torch.
pip install -q -c .ci/constraints.txt -e ".[test]"
# These peers require torchvision/torchaudio, which would pull another torch:
# they come without dependencies; what they import is in the test extras.
pip install -q -c .ci/constraints.txt --no-deps \
    snntorch==1.0.0 norse==1.1.0 spikingjelly==2.0.0 neurobench==2.3.0
python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
