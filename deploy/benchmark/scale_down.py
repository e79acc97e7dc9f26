"""Scale back to zero after the idle time, measured on the reconciler alone.

    python manage.py shell < deploy/benchmark/scale_down.py

One waiting call starts an instance of a simulator model (``idle_seconds: 5``, local
launcher); once it is ready the call is served, and the reconciler ticks every second
until the instance is stopped. Prints when it began draining and when it stopped, in
seconds after the call was served. Leaves a deployment ``idle-sim`` behind (re-run safe).
"""

import asyncio
import time
import uuid

from deploy import demand
from deploy.models import LIVE_INSTANCE_STATES, Deployment
from deploy.reconciler import reconcile
from deploy.services import deployment_apply
from deploy.specs import spec_parse

IDLE, EVERY = 5, 1.0
Deployment.objects.filter(model__name="idle-sim").delete()
spec = {
    "name": "idle-sim",
    "served_name": "idle-sim",
    "deployment": {
        "engine": "simulator",
        "engine_args": {"options": ["--startup-delay", "1"]},
        "launcher": "local",
        "target": {"ports": [24000, 24999]},
        "min_instances": 0,
        "max_instances": 1,
        "idle_seconds": IDLE,
        "scaling": {"scale_up_cooldown": 0, "scale_down_cooldown": 0},
    },
}
deployment = deployment_apply(spec=spec_parse(spec))
ticket = uuid.uuid4().hex
until = time.time() + 60
asyncio.run(demand.demand_note_waiting(model_id=deployment.model_id, ticket=ticket, until=until))
while not deployment.instances.filter(state="ready").exists():
    reconcile(deployment_id=deployment.pk)
    time.sleep(0.2)
asyncio.run(demand.demand_done(model_id=deployment.model_id, ticket=ticket))
served = time.time()
draining = None
while deployment.instances.filter(state__in=LIVE_INSTANCE_STATES).exists():
    if reconcile(deployment_id=deployment.pk).draining and draining is None:
        draining = round(time.time() - served, 2)
    time.sleep(EVERY)
instance = deployment.instances.get()
assert instance.stopped_at is not None
stopped = round(instance.stopped_at.timestamp() - served, 2)
print(
    {
        "idle_seconds": IDLE,
        "tick_s": EVERY,
        "draining_after_s": draining,
        "stopped_after_s": stopped,
    }
)
