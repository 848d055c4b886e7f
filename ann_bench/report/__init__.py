"""Reading results: the metric table, its cache, Pareto frontiers, plots, export and the site."""
