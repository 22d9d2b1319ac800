"""Reporting: the results tables, the published results, plots and attention figures."""
