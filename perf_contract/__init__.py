"""What the pipeline and the trigger Lambda must agree on, defined once.

No Dagster import (the Lambda zip ships this package): the run tags (``tags``), the id
pattern, entity types and periods (``ids``), the run config of the ``run_request`` resource
(``run_config``) and the SQS request messages (``messages``). docs/api.md describes them.
"""
