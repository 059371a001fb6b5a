"""Evaluation: report figures (``plots``, matplotlib Agg), the test report, the champion's
re-evaluation and the promotion gates. The metrics themselves are in ``components.metrics``
(numpy only), below training and export, which use them too.
"""
