"""Portfolio reports (tearsheets): one self-contained HTML page per portfolio and an index.

data.py reads the stored outputs, figures.py picks every number a report shows out of them
(no second calculation of a stored figure), charts.py draws them with Plotly, render.py
lays them out with Jinja2, writer.py writes them to a folder or an S3 prefix, and
command.py is `perf-pipeline report`.

Why Plotly and Jinja2: Plotly is the interactive charting library Python analysts know
from notebooks; its wheel ships plotly.js, so the pages render offline with the script
written once beside them (Altair's Vega-Lite needs three scripts it does not ship,
matplotlib draws pictures without hover values), and it does the heatmap, the log switch,
the hover values and the d3 number and date formats itself. Jinja2 is the template engine
Dagster already depends on, with autoescaping.
"""
