"""What a boto3 client sends: the parameters of each call of one operation."""

import threading


class RecordedCalls:
    """The parameters of every `operation` call (e.g. "s3.GetObject") the client makes, from a
    before-parameter-build hook; safe for clients used from several threads."""

    def __init__(self, client, operation: str):
        self.params: list[dict] = []
        self._lock = threading.Lock()
        client.meta.events.register(f"before-parameter-build.{operation}", self)

    def __call__(self, params, **_):
        with self._lock:
            self.params.append(params)
