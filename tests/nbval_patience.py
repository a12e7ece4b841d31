"""A pytest plugin for the notebook stage (``make nbval``): wait longer for cell outputs.

nbval waits at most 5 seconds between two messages of a cell's output (a constant,
``IPyNbCell.output_timeout``, with no option to change it). On a busy machine, such as
two cores running ``make -j4 test`` with the unit tests beside the notebooks, the kernel's
messages can take longer, and nbval then fails a cell that ran fine with "Timeout of 5
seconds exceeded waiting for output". This plugin raises that wait to
`OUTPUT_TIMEOUT_S`. A cell that really hangs is still stopped by nbval's own
``--nbval-cell-timeout``.
"""

import nbval.plugin

OUTPUT_TIMEOUT_S = 120

_nbval_init = nbval.plugin.IPyNbCell.__init__


def _patient_init(self, *args, **kwargs) -> None:
    _nbval_init(self, *args, **kwargs)
    self.output_timeout = OUTPUT_TIMEOUT_S


nbval.plugin.IPyNbCell.__init__ = _patient_init
