"""cmd-har library: data, models, training, evaluation, export and edge code.

Plain Python / numpy / torch. Nothing in here imports ZenML, so the library runs
anywhere torch does (a laptop, a GPU box without the MLOps stack, a serving image).
"""

__version__ = "0.1.0"
