"""The Celery app: queues `celery` (default) and `gpu` (training rounds, see settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def survive_broker_outage() -> None:
    """Keep the worker alive when Redis goes away while it holds unacknowledged messages.

    Celery 5.7's consumer, on a lost broker connection, first `collect()`s the connection (which
    detaches the transport: `transport.client = None`) and then `close()`s it. The close runs the
    Redis channel's restore of unacknowledged messages again, which builds a new connection pool
    from `transport.client.hostname`, and the AttributeError it raises is not one of the
    connection errors `ignore_errors` swallows, so the worker stops with "Unrecoverable error:
    AttributeError('NoneType' object has no attribute 'hostname')". Reproduced with kombu 5.7.0
    and ETA (countdown) messages in flight, as the consensus drain sends them.

    Raising redis' ConnectionError instead turns that late restore into the connection error it
    is: ignored, the consumer reconnects. The messages stay in Redis' unacked set (restored after
    the visibility timeout) and every long job is recovered sooner by core.jobs' sweep.
    """
    import redis
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.Channel._connparams
    if getattr(original, "_altpref_guarded", False):
        return

    def _connparams(self, *args, **kwargs):
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("broker connection already released")
        return original(self, *args, **kwargs)

    _connparams._altpref_guarded = True
    kombu_redis.Channel._connparams = _connparams


survive_broker_outage()

app = Celery("altpref")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
