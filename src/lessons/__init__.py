"""lessons: the tested code behind the book *Attention, built and tested*.

One module per topic; each chapter imports its module and shows its code with
`show_source`. Start with ``print(lessons.check_environment())``.
"""

from lessons.environment import check_environment
from lessons.source import show_source

__version__ = "0.1.0"

__all__ = ["__version__", "check_environment", "show_source"]
