"""The subcommands of the ``spikeforge`` command (:mod:`spikeforge.cli`), one module per
group: :mod:`~spikeforge.commands.train` (``train``), :mod:`~spikeforge.commands.runs`
(``eval``, ``simulate``, ``report``: use a trained run), :mod:`~spikeforge.commands.convert`
(``convert``, ``export``, ``import-nir``: a run from or into another form) and
:mod:`~spikeforge.commands.info` (``config``, ``models``, ``datasets``).

Each module adds its subparsers and holds one handler ``fn(args) -> exit status`` per
command; :mod:`spikeforge.cli` assembles the parser, dispatches and turns errors into
one line. Handlers import the packages they call when they run, so that
``spikeforge --help`` does not import torch.
"""

OVERRIDE_HELP = (
    "config overrides as dotted key=value pairs, e.g. epochs=3 data.time_steps=8 "
    "model.neuron=plif optim.lr=0.001 (values are parsed as YAML)"
)


def one_line(e: BaseException) -> str:
    """The message of ``e`` on one line (YAML and OS errors quote multi-line text)."""
    return " ".join(str(e).split()) or type(e).__name__
