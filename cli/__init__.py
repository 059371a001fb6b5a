"""The ``har`` command line (``har ...`` or ``python -m cli ...``): the top layer.

Arrows run one way: ``cli`` -> ``pipelines`` -> ``steps`` -> ``components``
(tests/unit/test_import_graph.py checks it). Commands import ZenML, MLflow, torch and the
pipelines inside their functions: ``har --help`` stays quick and ``har edge ...`` torch-free.
"""
