"""The results as a static website: `python -m ann_bench.website [--output site/]`.

model.py gathers every result (ok, failed, unreadable) per dataset and k from the metrics
cache; charts.py makes the Plotly figures; pages.py renders the templates and writes the
folder, which works from file:// with no network (plotly.min.js is in it).
"""
