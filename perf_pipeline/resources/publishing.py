"""An IO manager that stores a frame in a primary store and also publishes it elsewhere."""

import pandas as pd
from dagster import (
    ConfigurableIOManager,
    InputContext,
    IOManager,
    MetadataValue,
    OutputContext,
    ResourceDependency,
)

from perf_pipeline.resources.timestream import TimestreamRejectedError


class PublishingIOManager(ConfigurableIOManager):
    """Writes through `store` (which loads it back) and then through `publish` (write-only).

    A Timestream rejection is reported record by record in the run's log and in the output
    metadata of the failure, then fails the step: nothing is silently dropped.
    """

    store: ResourceDependency[IOManager]
    publish: ResourceDependency[IOManager]

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        self.store.handle_output(context, obj)
        try:
            self.publish.handle_output(context, obj)
        except TimestreamRejectedError as error:
            rows = pd.DataFrame([vars(record) for record in error.rejected])
            context.add_output_metadata({
                "rejected_records": len(rows),
                "rejected": MetadataValue.md(rows.head(50).to_markdown(index=False)),
            })
            for record in error.rejected:
                context.log.error(f"Timestream rejected {record}")
            raise

    def load_input(self, context: InputContext) -> pd.DataFrame:
        return self.store.load_input(context)
