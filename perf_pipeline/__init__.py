"""perf-pipeline: investment performance as Dagster assets."""
