"""Asset group names, as the Dagster UI shows them."""

INPUTS = "inputs"
VALUATION = "valuation"
PERFORMANCE = "performance"
PUBLICATION = "publication"
