"""Portfolio reports (tearsheets): one self-contained HTML page per portfolio and an index.

data.py reads the stored outputs, figures.py picks every number a report shows out of them
(no second calculation of a stored figure), charts.py draws them with Plotly, render.py
lays them out with Jinja2, writer.py writes them to a folder or an S3 prefix, and
command.py is `perf-pipeline report`.
"""
