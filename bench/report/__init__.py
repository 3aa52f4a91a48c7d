"""Reports: frames loaded from the store, statistics, tables, plots and the plan printout.

Read-only with respect to results: no cell or pre-training imports this package.
"""
