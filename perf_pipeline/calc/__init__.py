"""Pure performance calculations: numpy, pandas and scipy only, no Dagster."""
