"""Reporting: the results bundle, the end-of-run summary, the HTML dashboard, baselines and comparison."""
